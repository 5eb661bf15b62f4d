// The reference WebSocket tracker (bittorrent-tracker's Server, npm) on a loopback port, for
// tests/src/bin/bench-tracker.rs. Prints `READY <port>` once listening; exits when stdin closes.
//
//   node tests/js/reference-tracker.mjs

import { Server } from 'bittorrent-tracker'

const server = new Server({ http: false, udp: false, ws: true, stats: false })
server.on('error', err => console.error('tracker error:', err.message))
server.on('warning', () => {})
server.listen(0, '127.0.0.1', () => {
  console.log(`READY ${server.ws.address().port}`)
})
process.stdin.on('end', () => server.close(() => process.exit(0)))
process.stdin.resume()

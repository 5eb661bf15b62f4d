// Drives the REAL bittorrent-tracker client (npm) against a Shoal pod's trackers and prints one
// JSON object with what happened. Used by tests/tests/tracker_interop.rs; runnable by hand:
//
//   node tests/js/tracker-client.mjs http://127.0.0.1:9000 <info-hash hex the pod knows>
//
// WebSocket part: clients A and B announce the same torrent over one shared socket (the client
// pools sockets per URL, as in a browser), with real WebRTC offers (@roamhq/wrtc stands in for
// webrtc-polyfill, see package.json "overrides"); B's offer is relayed to A, A's answer back,
// and the two peers open a data channel and exchange a message. A third client announces an
// info-hash the pod does not know on the same socket: it must get a warning, and the socket
// must survive. Then a scrape.
// HTTP part: two clients announce to /tracker/announce; the second must receive the first's
// address as a compact peer.

import Client from 'bittorrent-tracker'

const [baseUrl, infoHash] = process.argv.slice(2)
if (!baseUrl || !/^[0-9a-f]{40}$/.test(infoHash ?? '')) {
  console.error('usage: node tracker-client.mjs <pod url> <info-hash hex>')
  process.exit(2)
}
const wsUrl = baseUrl.replace(/^http/, 'ws').replace(/\/$/, '') + '/tracker/socket'
const httpUrl = baseUrl.replace(/\/$/, '') + '/tracker/announce'
const rtcConfig = { iceServers: [] } // loopback/LAN only: no STUN

const result = { ws: {}, http: {}, unknown: {}, errors: [] }
const clients = []

function peerIdFor (tag) {
  // 20 bytes with high bytes, so that binary-string encoding matters.
  const id = new Uint8Array(20)
  id.set(new TextEncoder().encode('-SH0001-'), 0)
  for (let i = 8; i < 20; i++) id[i] = 0x80 + ((i * 7 + tag.charCodeAt(0)) % 0x80)
  return id
}

function makeClient (tag, announce, extra = {}) {
  const client = new Client({
    infoHash,
    peerId: peerIdFor(tag),
    announce: [announce],
    port: 6881,
    rtcConfig,
    ...extra
  })
  client.warnings = []
  client.on('warning', err => client.warnings.push(err.message))
  client.on('error', err => result.errors.push(`${tag}: ${err.message}`))
  clients.push(client)
  return client
}

const once = (emitter, event) => new Promise(resolve => emitter.once(event, resolve))
const within = (ms, promise, what) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms))
])

async function websocketPart () {
  const a = makeClient('A', wsUrl)
  const b = makeClient('B', wsUrl)

  // A first: its offers find nobody yet.
  const aUpdate = once(a, 'update')
  a.start({ left: 1000 })
  result.ws.updateA = pick(await within(15000, aUpdate, 'A update'))

  // A waits for an incoming peer (B's relayed offer); B for the answer to one of its offers.
  const aPeer = once(a, 'peer')
  const bPeer = once(b, 'peer')
  const bUpdate = once(b, 'update')
  b.start() // no `left`: unknown, which must not count as a seeder
  result.ws.updateB = pick(await within(15000, bUpdate, 'B update'))

  const [pa, pb] = await within(20000, Promise.all([aPeer, bPeer]), 'peers from relayed offer/answer')
  result.ws.offerRelayed = true
  result.ws.aPeerId = pa.id
  result.ws.bPeerId = pb.id
  await within(20000, Promise.all([
    pa.connected ? null : once(pa, 'connect'),
    pb.connected ? null : once(pb, 'connect')
  ]), 'WebRTC connection')
  const got = once(pa, 'data')
  pb.send('hello over WebRTC')
  result.ws.dataChannelMessage = new TextDecoder().decode(await within(10000, got, 'data'))

  // Same socket (pooled per URL), unknown torrent: a warning, not a dropped socket.
  const u = makeClient('U', wsUrl, { infoHash: 'ff'.repeat(20) })
  const uWarning = once(u, 'warning')
  u.start({ left: 0 })
  result.unknown.warning = (await within(10000, uWarning, 'unknown-hash warning')).message

  const scrape = once(a, 'scrape')
  a.scrape()
  result.ws.scrape = pick(await within(10000, scrape, 'scrape'))

  result.ws.warningsA = a.warnings
  result.ws.warningsB = b.warnings
}

async function httpPart () {
  const h1 = makeClient('1', httpUrl, { port: 7001 })
  const h1Update = once(h1, 'update')
  h1.start({ left: 0 })
  result.http.update1 = pick(await within(10000, h1Update, 'HTTP update 1'))

  const h2 = makeClient('2', httpUrl, { port: 7002 })
  const peers = []
  h2.on('peer', addr => peers.push(addr))
  const h2Update = once(h2, 'update')
  h2.start({ left: 100 })
  result.http.update2 = pick(await within(10000, h2Update, 'HTTP update 2'))
  await new Promise(resolve => setTimeout(resolve, 100)) // 'peer' events follow 'update'
  result.http.peers2 = peers
  result.http.warnings = [...h1.warnings, ...h2.warnings]
}

function pick (response) {
  const { complete, incomplete, interval, downloaded } = response
  return { complete, incomplete, interval, downloaded }
}

try {
  await websocketPart()
  await httpPart()
} catch (err) {
  result.errors.push(err.message)
}
console.log(JSON.stringify(result))
for (const client of clients) client.destroy()
setTimeout(() => process.exit(0), 500).unref()

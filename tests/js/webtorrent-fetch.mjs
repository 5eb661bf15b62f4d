// Downloads a pod's torrent with the real WebTorrent (npm, in Node) and prints what happened as
// one JSON line:
//
//   node webtorrent-fetch.mjs TORRENT_URL SAVE_DIR [TIMEOUT_SECONDS]
//
// Only what the .torrent names may be used: DHT, local peer discovery, uTP and UPnP/NAT-PMP are off,
// so bytes can come only from the torrent's trackers (the pod's WebSocket tracker, through the
// @roamhq/wrtc polyfill, and its HTTP tracker) and its WebSeed. WebTorrent asks a WebSeed for one
// piece per `Range` request and checks every piece's SHA-1, so finishing proves the WebSeed answers
// real 206 ranges.
//
// Output: {ok, infoHash, name, length, pieces, sha1 (of the file written to disk), file, downloaded,
// received, fromWebSeed (bytes the WebSeed wire delivered), webSeeds, trackers (announce answers
// per URL), warnings, error}. Exit status 0 when done, 1 on error or timeout, 2 on bad usage.

import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import WebTorrent from 'webtorrent'

const [source, saveDir, timeoutArg] = process.argv.slice(2)
if (!source || !saveDir) {
  console.error('usage: node webtorrent-fetch.mjs TORRENT_URL SAVE_DIR [TIMEOUT_SECONDS]')
  process.exit(2)
}
const timeoutMs = Number(timeoutArg || 60) * 1000

const result = { ok: false, trackers: {}, warnings: [], webSeeds: [], fromWebSeed: 0 }
const webSeedWires = []
let client

function finish (error) {
  if (error) result.error = String(error && error.message ? error.message : error)
  console.log(JSON.stringify(result))
  // Destroying closes the store (the file is complete on disk by then), the tracker sockets and
  // the listening socket; exit regardless so that a stuck socket cannot hang the test.
  const exit = () => process.exit(result.ok ? 0 : 1)
  if (client && !client.destroyed) client.destroy(exit)
  else exit()
  setTimeout(exit, 2000).unref()
}

const timer = setTimeout(() => finish(new Error(`not done after ${timeoutMs / 1000} s`)), timeoutMs)

try {
  // The .torrent itself, not the magnet: WebTorrent only uses web seeds once it has the metadata
  // (webtorrent-protocol.md §4.1), and desktop users open .torrent files.
  const response = await fetch(source)
  if (!response.ok) throw new Error(`GET ${source}: ${response.status}`)
  const torrentFile = Buffer.from(await response.arrayBuffer())

  client = new WebTorrent({
    dht: false,
    lsd: false,
    utPex: false,
    utp: false, // utp-native is installed without its build step (--ignore-scripts)
    natUpnp: false,
    natPmp: false
  })
  client.on('error', finish)

  const torrent = client.add(torrentFile, { path: saveDir })
  torrent.on('warning', err => result.warnings.push(String(err.message || err)))
  torrent.on('error', finish)
  torrent.on('wire', wire => {
    // The WebSeed is modelled as a wire of its own type; keep it to read what it delivered.
    if (wire.type === 'webSeed') webSeedWires.push(wire)
  })
  torrent.on('ready', () => {
    // One 'update' per tracker answer, carrying its URL: shows which trackers the client reached.
    torrent.discovery.tracker?.on('update', data => {
      result.trackers[data.announce] = (result.trackers[data.announce] || 0) + 1
    })
  })
  torrent.on('done', async () => {
    clearTimeout(timer)
    try {
      const file = torrent.files[0]
      result.infoHash = torrent.infoHash
      result.name = torrent.name
      result.length = torrent.length
      result.pieces = torrent.pieces.length
      result.downloaded = torrent.downloaded
      result.received = torrent.received
      result.fromWebSeed = webSeedWires.reduce((sum, wire) => sum + wire.downloaded, 0)
      result.webSeeds = torrent.urlList
      result.file = path.join(saveDir, file.path)
      // A short wait lets the store's last write land before the file is read back.
      await new Promise(resolve => setTimeout(resolve, 200))
      const bytes = await readFile(result.file)
      result.sha1 = createHash('sha1').update(bytes).digest('hex')
      result.ok = bytes.length === torrent.length
      finish()
    } catch (err) {
      finish(err)
    }
  })
} catch (err) {
  clearTimeout(timer)
  finish(err)
}

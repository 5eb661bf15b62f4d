// Makes a torrent of FILE with create-torrent (npm: what WebTorrent's `client.seed()` uses) and
// prints its info-hash as one JSON line:
//
//   node create-torrent-hash.mjs FILE [NAME]
//
// NAME is the torrent's name (default: FILE's base name). Only the info dictionary counts for the
// info-hash (name, piece length, pieces, length), so if this equals the pod's info-hash, a
// WebTorrent user who seeds the same file joins the pod's swarm.
//
// Output: {infoHash, name, length, pieceLength, pieces, seconds (time spent hashing)}.

import { stat } from 'node:fs/promises'
import path from 'node:path'
import createTorrent from 'create-torrent'
import parseTorrent from 'parse-torrent'

const [file, nameArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node create-torrent-hash.mjs FILE [NAME]')
  process.exit(2)
}
const name = nameArg || path.basename(file)
await stat(file) // a clear error for a missing file, before create-torrent's own

const started = process.hrtime.bigint()
const torrentFile = await new Promise((resolve, reject) => {
  // announceList: [] keeps create-torrent's default public trackers out; they do not change the
  // info-hash, but nothing here needs them.
  createTorrent(file, { name, announceList: [] }, (err, torrent) => (err ? reject(err) : resolve(torrent)))
})
const seconds = Number(process.hrtime.bigint() - started) / 1e9
const parsed = await parseTorrent(torrentFile)
console.log(JSON.stringify({
  infoHash: parsed.infoHash,
  name: parsed.name,
  length: parsed.length,
  pieceLength: parsed.pieceLength,
  pieces: parsed.pieces.length,
  seconds
}))

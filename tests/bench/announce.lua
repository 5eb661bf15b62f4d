-- wrk script: HTTP tracker announces (BEP 3, compact BEP 23) for one swarm, each from a new peer
-- (random peer_id and port, half of them seeders), so swarms stay full and every answer carries
-- a list of peers. Environment: BENCH_ANNOUNCE_PATH (e.g. /announce), BENCH_INFO_HASH (the
-- 20 bytes percent-escaped), BENCH_CLOSE=1 to ask for one announce per connection, which is how
-- BitTorrent clients announce (a new connection every interval).
-- Prints one line "BENCH {json}" at the end for shoal-bench to read.

local announce = os.getenv("BENCH_ANNOUNCE_PATH")
local info_hash = os.getenv("BENCH_INFO_HASH")
local headers = {}
if os.getenv("BENCH_CLOSE") == "1" then
  headers["Connection"] = "close"
end

-- Each wrk thread has its own Lua state: give each its own seed.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + seed)
end

request = function()
  local path = string.format(
    "%s?info_hash=%s&peer_id=-SB0001-%06d%06d&port=%d&uploaded=0&downloaded=0&left=%d&compact=1&numwant=50",
    announce, info_hash, math.random(0, 999999), math.random(0, 999999),
    math.random(1024, 65535), math.random(0, 1) * 1048576)
  return wrk.format("GET", path, headers)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end

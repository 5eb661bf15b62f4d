-- wrk script: random aligned byte ranges of one file, as BitTorrent clients ask a WebSeed for
-- pieces. Environment: BENCH_FILE_SIZE (bytes), BENCH_RANGE (bytes per request).
-- Prints one line "BENCH {json}" at the end for shoal-bench to read.

local size = tonumber(os.getenv("BENCH_FILE_SIZE"))
local range = tonumber(os.getenv("BENCH_RANGE"))
local slots = math.floor(size / range)

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
  local start = math.random(0, slots - 1) * range
  return wrk.format("GET", nil, { ["Range"] = "bytes=" .. start .. "-" .. (start + range - 1) })
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end

-- wrk script for bench/soak.sh: POSTs the JSON body in $BENCH_BODY at a fixed pace per connection (one request
-- every $SOAK_INTERVAL_MS milliseconds, so connections x 1000 / interval requests per second at most) and at the end
-- prints one RESULT line like bench/chat.lua's, with ok = answers with a 2xx status.
local path = assert(os.getenv("BENCH_BODY"), "set BENCH_BODY to a request body file")
local interval = tonumber((assert(os.getenv("SOAK_INTERVAL_MS"), "set SOAK_INTERVAL_MS")))
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

function delay()
  return interval
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d ok=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.requests - errors.status, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end

-- wrk script for bench/load.sh: POSTs the JSON body in the file named by $BENCH_BODY to the URL on wrk's
-- command line, and at the end prints one machine-readable RESULT line: throughput, latency percentiles in
-- microseconds, and error counts (non2xx counts every status >= 400).
local path = assert(os.getenv("BENCH_BODY"), "set BENCH_BODY to a request body file")
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end

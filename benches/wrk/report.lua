-- wrk script for benches/load.sh: one request shape, from the environment.
--   TOKEN          bearer token
--   WRK_METHOD     GET (default), POST, PUT
--   WRK_BODY_FILE  the body of each request; WRK_CT its Content-Type
-- Prints one line: rps, latency percentiles, errors.
wrk.method = os.getenv("WRK_METHOD") or "GET"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
wrk.headers["Accept"] = "application/fhir+json"
local body_file = os.getenv("WRK_BODY_FILE")
if body_file then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("WRK_CT") or "application/fhir+json"
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    "rps=%.0f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end

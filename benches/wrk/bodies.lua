-- wrk script for benches/load.sh: POSTs the files listed (one path per line) in
-- WRK_BODIES to the URL given to wrk, in turn, with TOKEN; used for transaction ingest.
local bodies = {}
local i = 0

function init(args)
  for line in io.lines(os.getenv("WRK_BODIES")) do
    if #line > 0 then
      local f = assert(io.open(line, "rb"))
      bodies[#bodies + 1] = f:read("*a")
      f:close()
    end
  end
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
  wrk.headers["Content-Type"] = "application/fhir+json"
  wrk.headers["Prefer"] = "return=minimal"
end

function request()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end

function done(summary, latency, requests)
  io.write(string.format(
    "rps=%.1f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end

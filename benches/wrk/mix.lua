-- wrk script: cycles through the request paths listed (one per line) in the file named
-- by WRK_PATHS, with the bearer token in WRK_TOKEN. Used by run-search-bench.sh.
local paths = {}
local i = 0

function init(args)
  for line in io.lines(os.getenv("WRK_PATHS")) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
  wrk.headers["Accept"] = "application/fhir+json"
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end

function done(summary, latency, requests)
  io.write(string.format("p50_ms=%.2f p90_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d non2xx=%d rps=%.1f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, summary.errors.status, summary.requests / (summary.duration / 1e6)))
end

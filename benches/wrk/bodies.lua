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

-- The shared result line (summary.lua, in this script's folder).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
done = require("summary")

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

-- The shared result line (summary.lua, in this script's folder).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
done = require("summary")

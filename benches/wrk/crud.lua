-- wrk script for benches/load.sh: a CRUD mix on Observations of one patient.
--   TOKEN          bearer token
--   WRK_BODY_FILE  the Observation to create and update (no id)
-- load.sh first makes crud-0 … crud-199. Each request, at random: 50 % read of
-- crud-0 … crud-99, 20 % create, 20 % update of crud-0 … crud-199 (PUT: a deleted one
-- comes back), 10 % delete of crud-100 … crud-199 (deleting a deleted one is a 200).
-- Prints one line: rps, latency percentiles, errors, and the mix actually sent.
local body
local counts = {read = 0, create = 0, update = 0, delete = 0}

function init(args)
  local f = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
  body = f:read("*a")
  f:close()
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
  wrk.headers["Accept"] = "application/fhir+json"
end

local function with_id(id)
  return (body:gsub('"resourceType":"Observation"', '"resourceType":"Observation","id":"' .. id .. '"', 1))
end

function request()
  local r = math.random(100)
  -- A headers table given to wrk.format replaces wrk.headers: the token goes in it too.
  local json = {
    ["Authorization"] = wrk.headers["Authorization"],
    ["Accept"] = "application/fhir+json",
    ["Content-Type"] = "application/fhir+json",
  }
  if r <= 50 then
    counts.read = counts.read + 1
    return wrk.format("GET", "/fhir/Observation/crud-" .. math.random(0, 99))
  elseif r <= 70 then
    counts.create = counts.create + 1
    return wrk.format("POST", "/fhir/Observation", json, body)
  elseif r <= 90 then
    counts.update = counts.update + 1
    local id = "crud-" .. math.random(0, 199)
    return wrk.format("PUT", "/fhir/Observation/" .. id, json, with_id(id))
  else
    counts.delete = counts.delete + 1
    return wrk.format("DELETE", "/fhir/Observation/crud-" .. math.random(100, 199))
  end
end

-- The shared result line (summary.lua, in this script's folder).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
done = require("summary")

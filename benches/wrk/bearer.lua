-- wrk script adding a bearer token: TOKEN=... wrk -s benches/wrk/bearer.lua URL
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")

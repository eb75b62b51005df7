-- wrk script: POST /v1/recommend with N items per request, items taken
-- round-robin from a JSONL items file (one {"id","features","users"} object
-- a line, as written by `nextuser items`), counting non-200 answers.
--
--   wrk -t2 -c16 -d10s -s tools/load/recommend.lua http://127.0.0.1:PORT -- ITEMS.jsonl [N] [K]
--
-- or through the environment: NU_ITEMS=FILE NU_N=16 NU_K=100 (arguments win).
-- The path is /v1/recommend unless the URL names another one (or NU_PATH).
-- At the end it prints one line "wrk-json {...}" with requests, items, seconds,
-- requests/s, items/s, latency percentiles (ms), non-200 answers and socket
-- errors, for tools/load/run_serve_bench.sh to read.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

local function read_items(path)
   local f = assert(io.open(path, "r"), "cannot open items file " .. tostring(path))
   local items = {}
   for line in f:lines() do
      if line:match("%S") then items[#items + 1] = line end
   end
   f:close()
   assert(#items > 0, "no items in " .. path)
   return items
end

function init(args)
   local path = args[1] or os.getenv("NU_ITEMS")
   local n = tonumber(args[2] or os.getenv("NU_N") or "1")
   local k = tonumber(args[3] or os.getenv("NU_K") or "100")
   local target = os.getenv("NU_PATH")
   if target == nil then
      target = wrk.path
      if target == nil or target == "" or target == "/" then target = "/v1/recommend" end
   end
   local items = read_items(path)
   -- Pre-built requests: enough to cycle through the whole file at least once
   -- (each thread starts at its own offset so threads do not send in lockstep).
   local count = math.max(1, math.min(2000, math.ceil(#items / n)))
   local headers = {["Content-Type"] = "application/json"}
   reqs = {}
   local pos = ((tid or 1) - 1) * 997 % #items
   for r = 1, count do
      local parts = {}
      for j = 1, n do
         parts[j] = items[pos + 1]
         pos = (pos + 1) % #items
      end
      local body = '{"items":[' .. table.concat(parts, ",") .. '],"k":' .. k .. '}'
      reqs[r] = wrk.format("POST", target, headers, body)
   end
   nreq = 0
   non200 = 0
   items_per_request = n
end

function request()
   nreq = nreq + 1
   return reqs[(nreq - 1) % #reqs + 1]
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
      if non200 <= 3 then io.stderr:write("non-200 answer: " .. status .. " " .. tostring(body):sub(1, 200) .. "\n") end
   end
end

function done(summary, latency, requests)
   local bad, n = 0, 1
   for _, t in ipairs(threads) do
      bad = bad + (t:get("non200") or 0)
      n = t:get("items_per_request") or n
   end
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      'wrk-json {"requests": %d, "items_per_request": %d, "items": %d, "seconds": %.3f, ' ..
      '"requests_per_s": %.1f, "items_per_s": %.1f, "latency_ms": {"mean": %.3f, "p50": %.3f, ' ..
      '"p90": %.3f, "p99": %.3f, "max": %.3f}, "non200": %d, "socket_errors": {"connect": %d, ' ..
      '"read": %d, "write": %d, "timeout": %d}}\n',
      summary.requests, n, summary.requests * n, secs, summary.requests / secs,
      summary.requests * n / secs, latency.mean / 1e3, latency:percentile(50) / 1e3,
      latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
      bad, e.connect, e.read, e.write, e.timeout))
end

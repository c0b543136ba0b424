-- POST request bodies to Bulwark (or the baseline) and report as one JSON line.
--
-- Usage: wrk -t1 -cN -dS -s bench/wrk/post.lua URL -- BODIES_FILE [API_KEY]
--
-- BODIES_FILE holds one JSON request body per line; each connection sends them in turn,
-- starting at a different line, so that permits spread over many court orders (each order
-- allows a limited number of uses). Status codes are counted per thread and the summary
-- line, prefixed "WRKJSON ", carries throughput, latency percentiles (microseconds) and
-- the status counts, for bench/run.py to parse.

local bodies = {}
local next_body = 1
local threads = {}
statuses = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   local key = args[2]
   for line in io.lines(path) do
      if #line > 0 then
         table.insert(bodies, line)
      end
   end
   if #bodies == 0 then
      error("no request bodies in " .. tostring(path))
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   if key and #key > 0 then
      wrk.headers["Authorization"] = "Bearer " .. key
   end
   next_body = math.random(#bodies)
end

function request()
   local body = bodies[next_body]
   next_body = next_body % #bodies + 1
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      local seen = thread:get("statuses")
      for code, n in pairs(seen) do
         counts[code] = (counts[code] or 0) + n
      end
   end
   local parts = {}
   for code, n in pairs(counts) do
      table.insert(parts, string.format('"%s":%d', code, n))
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean, table.concat(parts, ",")))
end

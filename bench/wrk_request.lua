-- One fixed request per connection, repeated; the results printed as one JSON line.
--
-- Arguments after wrk's "--":  METHOD  BODY_FILE  ["Name: value" ...]
-- BODY_FILE is read in binary mode; an empty string means no body.
-- wrk builds the request once per thread after init() and adds Content-Length itself.

function init(args)
   wrk.method = args[1]
   if args[2] ~= nil and args[2] ~= "" then
      local f = assert(io.open(args[2], "rb"))
      wrk.body = f:read("*a")
      f:close()
   end
   for i = 3, #args do
      local name, value = string.match(args[i], "^([^:]+):%s*(.*)$")
      assert(name, "bad header argument: " .. args[i])
      wrk.headers[name] = value
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      'WRK_RESULT {"requests":%d,"duration_s":%.3f,"bytes":%d,"rps":%.2f,' ..
      '"mean_us":%.0f,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
      summary.requests, seconds, summary.bytes, summary.requests / seconds,
      latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end

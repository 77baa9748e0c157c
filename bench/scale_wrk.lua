-- wrk script for bench/scale.py --client wrk: replays pre-signed KMS requests and prints
-- every latency, so that slices can be pooled exactly.
--
--   wrk -s bench/scale_wrk.lua URL -- DIR N
--
-- DIR holds N files req1..reqN, each a complete SigV4-signed HTTP/1.1 request (headers and
-- body), valid for the 5-minute SigV4 window. Each connection starts at a different one.

local requests = {}
local next_index = 0

function init(args)
  local dir, n = args[1], tonumber(args[2])
  for k = 1, n do
    local f = assert(io.open(dir .. "/req" .. k, "rb"))
    requests[k] = f:read("*a")
    f:close()
  end
  next_index = math.random(n)
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

-- One JSON object: counts, and the latency histogram as [microseconds, count] pairs.
function done(summary, latency, _)
  local e = summary.errors
  local pairs_out = {}
  for i = 1, #latency do
    local value, count = latency(i)
    pairs_out[#pairs_out + 1] = string.format("[%d,%d]", value, count)
  end
  io.write(string.format(
    '{"duration_us":%d,"status_errors":%d,"socket_errors":%d,"latency_us":[%s]}\n',
    summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    table.concat(pairs_out, ",")))
end

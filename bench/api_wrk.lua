-- wrk script for bench/api.py: each thread alternates POST /v1/sessions and
-- DELETE of a session it created (with that session's secret), so every
-- create is paired with a delete. Optional think time (ms) per request from
-- the environment gives a steady rate for the latency-at-fixed-rate run.
local counter, thread_id = 0, 0
local pending = {}
-- Globals, so done() can read them through thread:get().
creates, deletes, errors = 0, 0, 0
local think_ms = tonumber(os.getenv("SF_THINK_MS") or "0")
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id
end

function request()
  local head = table.remove(pending)
  if head then
    local auth = {["Authorization"] = "Bearer " .. head.secret}
    return wrk.format("DELETE", "/v1/sessions/" .. head.id, auth)
  end
  counter = counter + 1
  local body = string.format('{"client_id":"bench-%d-%d","model":"roadster"}', thread_id, counter)
  return wrk.format("POST", "/v1/sessions", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 201 or status == 202 then
    local sid = string.match(body, '"session_id": ?"([^"]+)"')
    local secret = string.match(body, '"session_secret": ?"([^"]+)"')
    if sid and secret then
      creates = creates + 1
      table.insert(pending, {id = sid, secret = secret})
      return
    end
  elseif status == 200 then
    deletes = deletes + 1
    return
  end
  errors = errors + 1
end

function delay()
  return think_ms
end

function done(summary, latency, requests)
  local c, d, e = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + (t:get("creates") or 0)
    d = d + (t:get("deletes") or 0)
    e = e + (t:get("errors") or 0)
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "seconds": %.3f, "creates": %d, "deletes": %d, '
      .. '"errors": %d, "non2xx": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, c, d, e, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end

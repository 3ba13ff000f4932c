-- wrk script for bench/api.py: each thread alternates POST /v1/sessions and
-- DELETE of a session it created (with that session's secret), so every
-- create is paired with a delete. Creates are told apart by their answer:
-- 201 assigned an instance, 202 queued (not an assignment). Optional think
-- time (ms) per request from the environment gives a steady rate for the
-- latency-at-fixed-rate run.
local counter, thread_id = 0, 0
local pending = {}
-- Globals, so done() can read them through thread:get().
assigned, queued, deletes, assigned_deletes, errors = 0, 0, 0, 0, 0
local think_ms = tonumber(os.getenv("SF_THINK_MS") or "0")
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id
end

-- Responses of a thread's connections interleave: a delete's answer names its
-- session, which tells whether that session had been assigned.
local was_assigned = {}

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
      if status == 201 then
        assigned = assigned + 1
        was_assigned[sid] = true
      else
        queued = queued + 1
      end
      table.insert(pending, {id = sid, secret = secret})
      return
    end
  elseif status == 200 then
    deletes = deletes + 1
    local sid = string.match(body, '"session_id": ?"([^"]+)"')
    if sid and was_assigned[sid] then
      assigned_deletes = assigned_deletes + 1
      was_assigned[sid] = nil
    end
    return
  end
  errors = errors + 1
end

function delay()
  return think_ms
end

function done(summary, latency, requests)
  local a, q, d, ad, e = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + (t:get("assigned") or 0)
    q = q + (t:get("queued") or 0)
    d = d + (t:get("deletes") or 0)
    ad = ad + (t:get("assigned_deletes") or 0)
    e = e + (t:get("errors") or 0)
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "seconds": %.3f, "assigned": %d, "queued": %d, "deletes": %d, '
      .. '"assigned_deletes": %d, "errors": %d, "non2xx": %d, "socket_errors": %d, '
      .. '"p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, a, q, d, ad, e, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end

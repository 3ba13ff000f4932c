-- region_terminate: the cloud took the instance away (or the pool manager did).
-- KEYS: the region keys.
-- ARGV: 1 instance id, 2 now ms ('' = Redis TIME).
-- Returns: {1, requeue outbox entry or ''} or {0, 'unknown'}. Draining and
--          lost instances go straight to terminated; any other went away
--          unexpectedly (a spot reclaim, a console termination), so it is lost
--          first (a serving instance's session is re-placed), then terminated.
local iid, now = ARGV[1], now_ms(ARGV[2])
local state = redis.call('HGET', K_STATE, iid)
if not state or state == 'terminated' then return {0, 'unknown'} end
local entry = false
if state == 'reserved' or state == 'streaming' then
  entry = requeue_serving(iid, 'lost', now)
elseif state ~= 'draining' then
  set_state(iid, 'lost', now)
end
set_state(iid, 'terminated', now)
return {1, entry or ''}

-- region_drain: ops take an instance out of service.
-- KEYS: the region keys.
-- ARGV: 1 instance id, 2 now ms ('' = Redis TIME), 3 '1' to end its session now
--       (reason drained), else it drains when the session ends.
-- Returns: {1, state, end outbox entry or ''} or {0, 'unknown'}.
local iid, now, force = ARGV[1], now_ms(ARGV[2]), ARGV[3] == '1'
local state = redis.call('HGET', K_STATE, iid)
if not state or state == 'terminated' then return {0, 'unknown'} end
redis.call('HSET', K_DRAIN, iid, '1')
local entry = false
if state == 'reserved' or state == 'streaming' then
  if force then entry = stop_serving(iid, 'draining', 'drained', now) end
elseif state ~= 'draining' then
  set_state(iid, 'draining', now)
end
return {1, redis.call('HGET', K_STATE, iid), entry or ''}

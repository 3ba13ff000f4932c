-- region_client: the agent saw its player connect, reconnect or drop.
-- KEYS: the region keys.
-- ARGV: 1 instance id, 2 session id, 3 epoch, 4 now ms ('' = Redis TIME),
--       5 'connected' or 'disconnected', 6 reconnect window ms.
-- Returns: {1, state} or {0, 'stale'} (not this session at this epoch).
local iid, sid, epoch, now = ARGV[1], ARGV[2], ARGV[3], now_ms(ARGV[4])
local what, window_ms = ARGV[5], tonumber(ARGV[6])
if not serves(iid, sid, epoch) then return {0, 'stale'} end
local state = redis.call('HGET', K_STATE, iid)
if what == 'connected' then
  if state == 'reserved' then set_state(iid, 'streaming', now) end
  redis.call('ZREM', K_DISC, iid)
elseif state == 'streaming' then
  if not redis.call('ZSCORE', K_DISC, iid) then
    redis.call('ZADD', K_DISC, now + window_ms, iid)
  end
end
return {1, redis.call('HGET', K_STATE, iid)}

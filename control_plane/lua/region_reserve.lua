-- region_reserve: give one ready, freshly heartbeating instance to a new session.
-- KEYS: the region keys.
-- ARGV: 1 session id, 2 now ms ('' = Redis TIME), 3 claim TTL ms,
--       4 heartbeat freshness ms (older heartbeats are not assignable).
-- Returns: {1, instance id, private ip, epoch, claim deadline ms}
--          {0, 'queue_ahead'} when others already wait here (no jumping the queue)
--          {0, 'no_capacity'} when no instance is ready.
local sid, now, claim_ms, fresh_ms = ARGV[1], now_ms(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('ZCARD', K_QUEUE) > 0 then return {0, 'queue_ahead'} end
for _ = 1, 16 do
  local head = redis.call('ZRANGE', K_READY, 0, 0)
  local iid = head[1]
  if iid == nil then return {0, 'no_capacity'} end
  local hb = tonumber(redis.call('ZSCORE', K_HB, iid) or '0')
  if hb >= now - fresh_ms and redis.call('HGET', K_STATE, iid) == 'ready' then
    local epoch = redis.call('HINCRBY', K_EPOCH, iid, 1)
    set_state(iid, 'reserved', now)
    redis.call('HSET', K_SESS, iid, sid)
    local deadline = now + claim_ms
    redis.call('ZADD', K_CLAIMS, deadline, iid)
    return {1, iid, redis.call('HGET', K_IP, iid), epoch, deadline}
  end
  -- Stale or inconsistent: not assignable; the reaper decides whether it is lost.
  redis.call('ZREM', K_READY, iid)
end
return {0, 'no_capacity'}

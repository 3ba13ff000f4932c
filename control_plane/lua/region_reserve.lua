-- region_reserve: give one ready, freshly heartbeating instance to a session
-- (a waiting session placed again, or a create's fallback region).
-- KEYS: the region keys.
-- ARGV: 1 session id, 2 now ms ('' = Redis TIME), 3 claim TTL ms,
--       4 heartbeat freshness ms (older heartbeats are not assignable).
-- Returns: {1, instance id, private ip, epoch, claim deadline ms}
--          {0, 'queue_ahead'} when others already wait here (no jumping the queue)
--          {0, 'no_capacity'} when no instance is ready.
local sid, now, claim_ms, fresh_ms = ARGV[1], now_ms(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local iid, epoch_or_why, deadline = reserve_ready(sid, now, claim_ms, fresh_ms)
if not iid then return {0, epoch_or_why} end
return {1, iid, redis.call('HGET', K_IP, iid), epoch_or_why, deadline}

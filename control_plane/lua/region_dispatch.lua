-- region_dispatch: serve waiting sessions with ready instances, oldest ticket first.
-- KEYS: the region keys.
-- ARGV: 1 now ms ('' = Redis TIME), 2 claim TTL ms, 3 heartbeat freshness ms,
--       4 max assignments in this call.
-- Returns: bind outbox entries (the caller binds each session).
local now, claim_ms = now_ms(ARGV[1]), tonumber(ARGV[2])
local fresh_ms, max = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
while #out < max and redis.call('ZCARD', K_QUEUE) > 0 do
  local head = redis.call('ZRANGE', K_READY, 0, 0)
  local iid = head[1]
  if iid == nil then break end
  local hb = tonumber(redis.call('ZSCORE', K_HB, iid) or '0')
  if hb >= now - fresh_ms and redis.call('HGET', K_STATE, iid) == 'ready' then
    table.insert(out, serve_queue_head(iid, now, claim_ms))
  else
    redis.call('ZREM', K_READY, iid)
  end
end
return out

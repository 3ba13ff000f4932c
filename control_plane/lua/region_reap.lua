-- region_reap: expire claims, reconnect windows, silent instances, queue deadlines.
-- Safe to run from several processes at once: each item is re-checked here,
-- inside the script, before it changes.
-- KEYS: the region keys.
-- ARGV: 1 now ms ('' = Redis TIME), 2 lost-after ms (heartbeat age),
--       3 max items per kind.
-- Returns: outbox entries created (the caller finishes them at once).
local now, lost_ms, max = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}

for _, iid in ipairs(redis.call('ZRANGEBYSCORE', K_CLAIMS, '-inf', now, 'LIMIT', 0, max)) do
  if redis.call('HGET', K_STATE, iid) == 'reserved' then
    table.insert(out, stop_serving(iid, after_session(iid), 'claim_expired', now))
  else
    redis.call('ZREM', K_CLAIMS, iid)
  end
end

for _, iid in ipairs(redis.call('ZRANGEBYSCORE', K_DISC, '-inf', now, 'LIMIT', 0, max)) do
  if redis.call('HGET', K_STATE, iid) == 'streaming' then
    table.insert(out, stop_serving(iid, after_session(iid), 'disconnected', now))
  else
    redis.call('ZREM', K_DISC, iid)
  end
end

for _, iid in ipairs(redis.call('ZRANGEBYSCORE', K_HB, '-inf', now - lost_ms, 'LIMIT', 0, max)) do
  local state = redis.call('HGET', K_STATE, iid)
  if state == 'reserved' or state == 'streaming' then
    table.insert(out, stop_serving(iid, 'lost', 'instance_lost', now))
  elseif state and can_move(state, 'lost') then
    set_state(iid, 'lost', now)
  end
  -- Scanned once; a heartbeat puts it back (region_heartbeat).
  redis.call('ZREM', K_HB, iid)
end

for _, sid in ipairs(redis.call('ZRANGEBYSCORE', K_QDL, '-inf', now, 'LIMIT', 0, max)) do
  redis.call('ZREM', K_QDL, sid)
  if redis.call('ZREM', K_QUEUE, sid) == 1 then
    local entry = outbox_end(sid, false, false, 'queue_timeout')
    redis.call('ZADD', K_OUTBOX, now, entry)
    table.insert(out, entry)
  end
end
return out

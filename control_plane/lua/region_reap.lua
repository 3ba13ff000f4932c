-- region_reap: expire claims, reconnect windows, silent instances, queue deadlines.
-- Safe to run from several processes at once: each item is re-checked here,
-- inside the script, before it changes.
-- KEYS: the region keys.
-- ARGV: 1 now ms ('' = Redis TIME), 2 lost-after ms (heartbeat age),
--       3 max items per kind, 4 retention ms of lost and terminated instances,
--       5 watch gap ms: a pass more than this after the region's previous pass
--         (by any replica) means nobody watched meanwhile.
-- Returns: outbox entries created (the caller finishes them at once).
local now, lost_ms, max = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local retention_ms, gap_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}

-- Pause safety. While no reaper ran (every replica paused, down, or cut off
-- from Redis) the agents' heartbeats were most likely not accepted either, so
-- their silence proves nothing. After such a gap the watch restarts: no
-- instance is declared lost until it has been silent for lost_ms of watched time.
local meta = redis.call('HMGET', K_META, 'reaped_ms', 'watch_since')
local last, since = tonumber(meta[1]), tonumber(meta[2]) or 0
if last == nil or now - last > gap_ms then
  since = now
  redis.call('HSET', K_META, 'watch_since', since)
end
if last == nil or now > last then redis.call('HSET', K_META, 'reaped_ms', now) end

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

local silent = {}
if now - lost_ms >= since then
  silent = redis.call('ZRANGEBYSCORE', K_HB, '-inf', now - lost_ms, 'LIMIT', 0, max)
end
for _, iid in ipairs(silent) do
  local state = redis.call('HGET', K_STATE, iid)
  if state == 'reserved' or state == 'streaming' then
    -- Its session is re-placed (session_requeue), not ended.
    table.insert(out, requeue_serving(iid, 'lost', now))
  elseif state and can_move(state, 'lost') then
    set_state(iid, 'lost', now)
  end
  -- Scanned once; a heartbeat puts it back (region_heartbeat).
  redis.call('ZREM', K_HB, iid)
end

for _, sid in ipairs(redis.call('ZRANGEBYSCORE', K_QDL, '-inf', now, 'LIMIT', 0, max)) do
  redis.call('ZREM', K_QDL, sid)
  if redis.call('ZREM', K_QUEUE, sid) == 1 then
    queue_changed()
    local entry = outbox_end(sid, false, false, 'queue_timeout')
    redis.call('ZADD', K_OUTBOX, now, entry)
    table.insert(out, entry)
  end
end

-- Retention: a lost or terminated instance is forgotten entirely (rows, IP,
-- epoch, nonce binding), so the views never carry the dead forever and a
-- reused IP belongs to one instance only.
for _, iid in ipairs(redis.call('ZRANGEBYSCORE', K_GONE, '-inf', now - retention_ms,
                                'LIMIT', 0, max)) do
  local state = redis.call('HGET', K_STATE, iid)
  if state == 'lost' or state == 'terminated' then
    count_move(state, false)
    for _, key in ipairs({K_STATE, K_EPOCH, K_SESS, K_IP, K_SINCE, K_DRAIN}) do
      redis.call('HDEL', key, iid)
    end
    redis.call('HDEL', K_INFO, iid, iid .. '|nonce', iid .. '|owed')
    for _, key in ipairs({K_READY, K_HB, K_CLAIMS, K_DISC}) do redis.call('ZREM', key, iid) end
  end
  redis.call('ZREM', K_GONE, iid)
end
return out

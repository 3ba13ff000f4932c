-- region_release: an instance stops serving a session (epoch-fenced).
-- KEYS: the region keys.
-- ARGV: 1 instance id, 2 session id, 3 epoch, 4 now ms ('' = Redis TIME),
--       5 'ready' when no client ever touched it (a bind lost the race),
--         else 'recycle' (the renderer must be reset first), 6 claim TTL ms.
-- Returns: {1, new state, bind entry or ''} or {0, 'stale'} when the
--          instance no longer serves that session at that epoch.
local iid, sid, epoch, now = ARGV[1], ARGV[2], ARGV[3], now_ms(ARGV[4])
local mode, claim_ms = ARGV[5], tonumber(ARGV[6])
if not serves(iid, sid, epoch) then return {0, 'stale'} end
local state = redis.call('HGET', K_STATE, iid)
local entry = false
if mode == 'ready' and state == 'reserved' then
  entry = become_ready(iid, now, claim_ms)
else
  set_state(iid, after_session(iid), now)
  redis.call('HDEL', K_SESS, iid)
end
return {1, redis.call('HGET', K_STATE, iid), entry or ''}

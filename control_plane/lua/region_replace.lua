-- region_replace: the instance can no longer serve its session (its renderer
-- crashed, the agent says): the session is re-placed, not ended (epoch-fenced).
-- KEYS: the region keys.
-- ARGV: 1 instance id, 2 session id, 3 epoch, 4 now ms ('' = Redis TIME).
-- Returns: {1, new state, requeue entry} or {0, 'stale'} when the instance no
--          longer serves that session at that epoch.
local iid, sid, epoch, now = ARGV[1], ARGV[2], ARGV[3], now_ms(ARGV[4])
if not serves(iid, sid, epoch) then return {0, 'stale'} end
-- Recycling: the agent's supervisor restarts the renderer, then it reports
-- ready and serves the queue head (quite likely this very session again).
local entry = requeue_serving(iid, after_session(iid), now)
return {1, redis.call('HGET', K_STATE, iid), entry}

-- session_connected: the client reached its instance (epoch-fenced, idempotent).
-- KEYS: 1 client pointer, 2 session hash.
-- ARGV: 1 session id, 2 epoch, 3 now ms ('' = Redis TIME).
-- Returns: {1} connected, or {0, state or 'stale_epoch'}.
local sid, epoch, now = ARGV[1], ARGV[2], now_ms(ARGV[3])
local s = redis.call('HMGET', K_SESSION, 'state', 'epoch')
if s[1] ~= 'assigned' and s[1] ~= 'connected' then return {0, s[1] or 'unknown'} end
if s[2] ~= epoch then return {0, 'stale_epoch'} end
if s[1] == 'assigned' then
  session_move(sid, 'connected', {'connected_ms', now})
end
return {1}

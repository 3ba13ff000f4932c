-- session_end: end a live session (idempotent, optionally epoch-fenced).
-- KEYS: 1 client pointer, 2 session hash.
-- ARGV: 1 session id, 2 reason (lifecycle.EndReason), 3 epoch ('' = any),
--       4 now ms ('' = Redis TIME), 5 retention ms (how long the ended
--       session stays readable), 6 required state ('' = any live state),
--       7 region and 8 instance id that must be serving it ('' = anyone: the
--       client or ops end it; an agent's report names itself).
-- Returns: {1, region, instance id, epoch, queue regions} when this call ended
--          it (the caller releases the instance), or {0, state, reason};
--          state 'not_served' when 7/8 are not the session's region and instance.
local sid, reason, epoch, now = ARGV[1], ARGV[2], ARGV[3], now_ms(ARGV[4])
local retention, required = tonumber(ARGV[5]), ARGV[6]
local by_region, by_instance = ARGV[7] or '', ARGV[8] or ''
local s = redis.call('HMGET', K_SESSION, 'state', 'epoch', 'region', 'instance_id',
  'queue_regions', 'end_reason')
if not s[1] then return {0, 'unknown', ''} end
if not LIVE[s[1]] then return {0, s[1], s[6] or ''} end
if required ~= '' and s[1] ~= required then return {0, s[1], ''} end
if by_instance ~= '' and (s[3] ~= by_region or s[4] ~= by_instance) then
  return {0, 'not_served', ''}
end
if epoch ~= '' and s[2] ~= epoch then return {0, 'stale_epoch', ''} end
session_move(sid, 'ended', {'end_reason', reason, 'ended_ms', now, 'previous_state', s[1]})
redis.call('PEXPIRE', K_SESSION, retention)
return {1, s[3] or '', s[4] or '', s[2] or '', s[5] or ''}

-- session_bind: record the instance a waiting session was given.
-- KEYS: 1 client pointer, 2 session hash.
-- ARGV: 1 session id, 2 region, 3 instance id, 4 private ip, 5 epoch,
--       6 claim deadline ms, 7 now ms ('' = Redis TIME).
-- Returns: {1} bound, or {0, state} when the session is no longer waiting
--          (ended meanwhile, or already bound elsewhere): the caller then
--          hands the instance back.
local sid, region, iid, ip, epoch, claim = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now = now_ms(ARGV[7])
local state = redis.call('HGET', K_SESSION, 'state')
if state ~= 'queued' then return {0, state or 'unknown'} end
session_move(sid, 'assigned', {'region', region, 'instance_id', iid,
  'private_ip', ip, 'epoch', epoch, 'claim_deadline_ms', claim, 'assigned_ms', now})
return {1}

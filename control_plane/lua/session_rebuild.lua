-- session_rebuild: the session side of a session an agent still serves after
-- Redis lost data (region_register/region_heartbeat `adopt` took the instance
-- back first). Idempotent.
-- KEYS: 1 client pointer, 2 session hash.
-- ARGV: 1 session id, 2 region, 3 instance id, 4 private ip, 5 epoch,
--       6 state the agent reports ('assigned' or 'connected'),
--       7 claim deadline ms ('' when connected), 8 session secret,
--       9 now ms ('' = Redis TIME).
-- Returns: {1, state it had ('' = none), and the region, instance id and
--          epoch it was taken from ('' x3 = none: the caller releases that
--          instance)} when the session is (now) live on that instance at
--          that epoch, or {0, why}: 'ended' (it ended
--          meanwhile), 'elsewhere' (it is live on another instance or a later
--          epoch), 'client_busy' (its client already holds another live
--          session). The caller then hands the
--          instance back, and the agent is told to end the session.
-- A session the store forgot is recreated by replaying its history through
-- the table (queued -> assigned -> connected); what only the lost hash knew
-- (client id, model, configuration, created time) is unknown: created is now.
local sid, region, iid, ip, epoch = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local want, claim, secret, now = ARGV[6], ARGV[7], ARGV[8], now_ms(ARGV[9])
local s = redis.call('HMGET', K_SESSION, 'state', 'region', 'instance_id', 'epoch')
local had, displaced = s[1] or '', {'', '', ''}
if s[1] and not LIVE[s[1]] then return {0, 'ended'} end
if s[1] == 'assigned' or s[1] == 'connected' then
  if s[2] ~= region or s[3] ~= iid then
    -- Two agents report one session (one held a reservation a crashed call
    -- left behind): the one its player reached wins over one only rebuilt
    -- as assigned (the caller hands that one back).
    local rebuilt = redis.call('HGET', K_SESSION, 'rebuilt_ms')
    if not (rebuilt and s[1] == 'assigned' and want == 'connected') then
      return {0, 'elsewhere'}
    end
    displaced = {s[2], s[3], s[4]}
  elseif tonumber(s[4]) > tonumber(epoch) then
    return {0, 'elsewhere'}
  end
  redis.call('HSET', K_SESSION, 'region', region, 'instance_id', iid, 'private_ip', ip,
    'epoch', epoch, 'claim_deadline_ms', claim)
elseif s[1] == 'queued' then
  -- Its queue entry was kept while the instance's record was lost: it is served.
  session_move(sid, 'assigned', {'region', region, 'instance_id', iid, 'private_ip', ip,
    'epoch', epoch, 'claim_deadline_ms', claim, 'assigned_ms', now})
else
  local cur = redis.call('HMGET', K_CLIENT, 'sid', 'state')
  if cur[1] and cur[1] ~= sid and LIVE[cur[2]] then return {0, 'client_busy'} end
  session_move(sid, 'queued', {'client_id', '', 'secret', secret, 'regions', region,
    'created_ms', now, 'model', '', 'configuration', '{}',
    'queue_deadline_ms', now, 'rebuilt_ms', now})
  session_move(sid, 'assigned', {'region', region, 'instance_id', iid, 'private_ip', ip,
    'epoch', epoch, 'claim_deadline_ms', claim, 'assigned_ms', now})
end
if want == 'connected' and redis.call('HGET', K_SESSION, 'state') == 'assigned' then
  session_move(sid, 'connected', {'connected_ms', now})
end
return {1, had, displaced[1], displaced[2], displaced[3]}

-- session_restore: recreate a waiting session Redis forgot, from the facts
-- its user's s2 secret carries (control_plane/session_secrets.py), after the
-- caller checked the secret and its age. Only a session the store does not
-- know: one that exists (an agent's report rebuilt it: that wins, it is live)
-- is left as it is, and so is a client that holds another live session. Not
-- before one heartbeat period since a read first found it missing: by then
-- every live agent has reported what it streams, so a streaming session is
-- never put in line while its agent is about to take it back.
-- KEYS: 1 client pointer, 2 session hash, 3 missing marker (keys.missing_key).
-- ARGV: 1 session id, 2 'queued' (back in line) or 'ended' (its user ends it:
--       a tombstone, so a poll racing the DELETE cannot bring it back),
--       3 client id, 4 secret, 5 regions (csv), 6 created ms, 7 model,
--       8 configuration JSON, 9 queue deadline ms, 10 ticket, 11 queue regions
--       (csv), 12 now ms ('' = Redis TIME), 13 retention ms (ended),
--       14 grace ms (one heartbeat period; 'ended' needs none: an agent that
--       reports it later is told to end it), 15 marker lifetime ms.
-- Returns: {1, state written}, {0, 'wait', ms left} or {0, 'exists' | 'client_busy'}.
local sid, mode = ARGV[1], ARGV[2]
local now, retention = now_ms(ARGV[12]), tonumber(ARGV[13])
local grace, marker_ms = tonumber(ARGV[14]), tonumber(ARGV[15])
local K_MISSING = KEYS[3]
if redis.call('EXISTS', K_SESSION) == 1 then return {0, 'exists'} end
local cur = redis.call('HMGET', K_CLIENT, 'sid', 'state')
if cur[1] and cur[1] ~= sid and LIVE[cur[2]] then return {0, 'client_busy'} end
if mode ~= 'ended' then
  local since = tonumber(redis.call('GET', K_MISSING))
  if not since then
    redis.call('SET', K_MISSING, now, 'PX', marker_ms)
    since = now
  end
  if now - since < grace then return {0, 'wait', grace - (now - since)} end
end
redis.call('DEL', K_MISSING)
-- Replayed through the table like any session: created queued, then ended.
session_move(sid, 'queued', {'client_id', ARGV[3], 'secret', ARGV[4], 'regions', ARGV[5],
  'created_ms', ARGV[6], 'model', ARGV[7], 'configuration', ARGV[8],
  'queue_deadline_ms', ARGV[9], 'ticket', ARGV[10], 'queue_regions', ARGV[11],
  'rebuilt_ms', now})
if mode == 'ended' then
  session_move(sid, 'ended', {'end_reason', 'client_ended', 'ended_ms', now,
    'previous_state', 'queued'})
  redis.call('PEXPIRE', K_SESSION, retention)
  return {1, 'ended'}
end
return {1, 'queued'}

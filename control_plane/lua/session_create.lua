-- session_create: one live session per client (idempotent per client id).
-- KEYS: 1 client pointer, 2 session hash (keys.session_keys(new session id)).
-- ARGV: 1 new session id, 2 client id, 3 session secret, 4 accepted regions (csv),
--       5 now ms ('' = Redis TIME), 6 model, 7 configuration JSON,
--       8 queue timeout ms.
-- Returns: {1, session id, created ms} when created (queued: not yet placed), or
--          {0, existing session id} when the client already has a live one.
local sid, client_id, secret, regions = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, model, configuration, queue_ms = now_ms(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8])
local cur = redis.call('HMGET', K_CLIENT, 'sid', 'state')
if cur[1] and LIVE[cur[2]] then return {0, cur[1]} end
session_move(sid, 'queued', {'client_id', client_id, 'secret', secret, 'regions', regions,
  'created_ms', now, 'model', model, 'configuration', configuration,
  'queue_deadline_ms', now + queue_ms})
return {1, sid, now}

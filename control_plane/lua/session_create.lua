-- session_create: one live session per client (idempotent per client id),
-- created already bound when the region side reserved an instance for it
-- first (region_place: the create's two round trips).
-- KEYS: 1 client pointer, 2 session hash (keys.session_keys(new session id)).
-- ARGV: 1 new session id, 2 client id, 3 session secret, 4 accepted regions (csv),
--       5 now ms ('' = Redis TIME), 6 model, 7 configuration JSON,
--       8 queue timeout ms, and when an instance was reserved for it:
--       9 region, 10 instance id, 11 private ip, 12 epoch, 13 claim deadline ms
--       (10 '' = none: it is created queued, not yet placed).
-- Returns: {1, session id, created ms} when created (assigned, or queued), or
--          {0, existing session id} when the client already has a live one
--          (the caller hands its reservation back).
local sid, client_id, secret, regions = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, model, configuration, queue_ms = now_ms(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8])
local region, iid, ip, epoch, claim = ARGV[9] or '', ARGV[10] or '', ARGV[11], ARGV[12], ARGV[13]
local cur = redis.call('HMGET', K_CLIENT, 'sid', 'state')
if cur[1] and LIVE[cur[2]] then return {0, cur[1]} end
session_move(sid, 'queued', {'client_id', client_id, 'secret', secret, 'regions', regions,
  'created_ms', now, 'model', model, 'configuration', configuration,
  'queue_deadline_ms', now + queue_ms})
if iid ~= '' then
  session_move(sid, 'assigned', {'region', region, 'instance_id', iid,
    'private_ip', ip, 'epoch', epoch, 'claim_deadline_ms', claim, 'assigned_ms', now})
end
return {1, sid, now}

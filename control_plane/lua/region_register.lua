-- region_register: an agent announces its instance (idempotent).
-- KEYS: the region keys (keys.py REGION_KEY_NAMES).
-- ARGV: 1 instance id, 2 private ip, 3 info JSON, 4 now ms ('' = Redis TIME),
--       5 '1' to register straight into ready (tests, demo), else booting,
--       6 claim TTL ms (used if it is handed a queued session at once).
-- Returns: {state, bind outbox entry or ''}.
local iid, ip, info = ARGV[1], ARGV[2], ARGV[3]
local now, as_ready, claim_ms = now_ms(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local state = redis.call('HGET', K_STATE, iid)
redis.call('HSET', K_IP, iid, ip)
redis.call('HSET', K_INFO, iid, info)
redis.call('ZADD', K_HB, now, iid)
redis.call('HSETNX', K_EPOCH, iid, 0)
if state and state ~= 'terminated' then
  if state == 'lost' then set_state(iid, 'recycling', now); state = 'recycling' end
  return {state, ''}
end
redis.call('HDEL', K_DRAIN, iid)
if as_ready then
  local entry = become_ready(iid, now, claim_ms)
  return {redis.call('HGET', K_STATE, iid), entry or ''}
end
set_state(iid, 'booting', now)
return {'booting', ''}

-- region_register: an agent announces its instance (idempotent).
-- KEYS: the region keys (keys.py REGION_KEY_NAMES).
-- ARGV: 1 instance id, 2 private ip, 3 info JSON, 4 now ms ('' = Redis TIME),
--       5 '1' to register straight into ready (tests, demo), else booting,
--       6 claim TTL ms (used if it is handed a queued session at once).
-- Returns: {state, bind outbox entry or ''}; an error reply TRANSITION for a
--          terminated instance (ids are never reused), IP_CONFLICT when a live
--          instance re-registers with another private IP (its IP never changes).
local iid, ip, info = ARGV[1], ARGV[2], ARGV[3]
local now, as_ready, claim_ms = now_ms(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local state = redis.call('HGET', K_STATE, iid)
if state == 'terminated' then check_move('instance', iid, state, 'booting') end
if state then
  local known_ip = redis.call('HGET', K_IP, iid)
  if known_ip and known_ip ~= ip then
    return redis.error_reply('IP_CONFLICT instance ' .. iid .. ' has ' .. known_ip)
  end
  redis.call('HSET', K_INFO, iid, info)
  redis.call('ZADD', K_HB, now, iid)
  if state == 'lost' then set_state(iid, 'recycling', now); state = 'recycling' end
  return {state, ''}
end
set_state(iid, 'booting', now)
redis.call('HSET', K_IP, iid, ip)
redis.call('HSET', K_INFO, iid, info)
redis.call('ZADD', K_HB, now, iid)
redis.call('HSETNX', K_EPOCH, iid, 0)
redis.call('HDEL', K_DRAIN, iid)
if as_ready then
  local entry = become_ready(iid, now, claim_ms)
  return {redis.call('HGET', K_STATE, iid), entry or ''}
end
return {'booting', ''}

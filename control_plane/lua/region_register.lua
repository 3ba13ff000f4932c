-- region_register: an agent announces its instance (idempotent).
-- KEYS: the region keys (keys.py REGION_KEY_NAMES).
-- ARGV: 1 instance id, 2 private ip, 3 info JSON, 4 now ms ('' = Redis TIME),
--       5 '1' to register straight into ready (tests, demo), else booting,
--       6 claim TTL ms (used if it is handed a queued session at once),
--       7 sha256 of the agent's registration nonce ('' = none),
--       8 the highest epoch the agent has been assigned ('' or 0 = none),
--       9 session id the agent still serves ('' = none), 10 its epoch,
--       11 '1' when its player has connected.
-- Returns: {state, bind, rebuild or requeue outbox entry or ''}; the session
--          the agent serves is taken back when only lost data explains it
--          (_region.lua `adopt`); a session the region has it serve that the
--          restarted agent does not report is re-placed (requeue); an error reply TRANSITION for a
--          terminated instance (ids are never reused), IP_CONFLICT when a live
--          instance re-registers with another private IP (its IP never changes)
--          or the IP is another live instance's (a lost holder is terminated
--          instead: its IP was reused), NONCE_MISMATCH when the nonce
--          differs from the one bound at the first registration. Every check
--          comes before the first write: a refused registration changes nothing.
local iid, ip, info = ARGV[1], ARGV[2], ARGV[3]
local now, as_ready, claim_ms = now_ms(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
local nonce, nonce_field = ARGV[7] or '', iid .. '|nonce'
local max_epoch, rsid, repoch = ARGV[8] or '', ARGV[9] or '', ARGV[10] or ''
local rconnected = ARGV[11] == '1'
local state = redis.call('HGET', K_STATE, iid)
if state == 'terminated' then check_move('instance', iid, state, 'booting') end
local known_ip = state and redis.call('HGET', K_IP, iid)
if known_ip and known_ip ~= ip then
  return redis.error_reply('IP_CONFLICT instance ' .. iid .. ' has ' .. known_ip)
end
-- A lost instance holding the IP is gone: the cloud gave its address to this
-- (attested) instance. It is terminated below, after every check.
local displaced = {}
if not known_ip then
  local all = redis.call('HGETALL', K_IP)
  for i = 1, #all, 2 do
    if all[i + 1] == ip and all[i] ~= iid then
      local other = redis.call('HGET', K_STATE, all[i])
      if other == 'lost' then
        table.insert(displaced, all[i])
      elseif other and other ~= 'terminated' then
        return redis.error_reply('IP_CONFLICT ' .. ip .. ' has another live instance')
      end
    end
  end
end
local bound = redis.call('HGET', K_INFO, nonce_field)
if bound and bound ~= nonce then
  return redis.error_reply('NONCE_MISMATCH instance ' .. iid)
end
if nonce ~= '' and not bound then redis.call('HSET', K_INFO, nonce_field, nonce) end
for _, gone in ipairs(displaced) do set_state(gone, 'terminated', now) end
if state then
  if not known_ip then redis.call('HSET', K_IP, iid, ip) end
  redis.call('HSET', K_INFO, iid, info)
  redis.call('ZADD', K_HB, now, iid)
  if state == 'lost' then set_state(iid, 'recycling', now) end
  -- An agent registers again only after it restarted (its instance rebooted):
  -- a session the region still has it serve, but that the agent does not
  -- report, is gone from that GPU. It is re-placed, the instance resets first.
  local requeued = false
  local serving = redis.call('HGET', K_SESS, iid)
  if (state == 'reserved' or state == 'streaming') and serving
      and not (serving == rsid and redis.call('HGET', K_EPOCH, iid) == repoch) then
    requeued = requeue_serving(iid, after_session(iid), now)
  end
  local adopted = adopt(iid, rsid, repoch, rconnected, now, claim_ms)
  raise_epoch(iid, max_epoch)
  return {redis.call('HGET', K_STATE, iid), adopted or requeued or ''}
end
set_state(iid, 'booting', now)
redis.call('HSET', K_IP, iid, ip)
redis.call('HSET', K_INFO, iid, info)
redis.call('ZADD', K_HB, now, iid)
redis.call('HSETNX', K_EPOCH, iid, 0)
redis.call('HDEL', K_DRAIN, iid)
local adopted = adopt(iid, rsid, repoch, rconnected, now, claim_ms)
raise_epoch(iid, max_epoch)
if adopted then return {redis.call('HGET', K_STATE, iid), adopted} end
if as_ready then
  local entry = become_ready(iid, now, claim_ms)
  return {redis.call('HGET', K_STATE, iid), entry or ''}
end
return {'booting', ''}

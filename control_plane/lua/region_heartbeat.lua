-- region_heartbeat: an agent's periodic report; answers its assignment.
-- KEYS: the region keys.
-- ARGV: 1 instance id, 2 now ms ('' = Redis TIME), 3 reported state,
--       4 reported session id ('' for none), 5 reported epoch ('' for none),
--       6 claim TTL ms, 7 the highest epoch the agent has been assigned
--       ('' or 0 = none), 8 '1' when the reported session id is well formed
--       (only then may it be taken back),
--       9 the session id the agent last ended itself ('' = none), 10 its epoch.
-- Returns: {state, session id or '', epoch, claim deadline ms or '',
--           commands (comma separated: drain, end_session),
--           bind or rebuild entry or '', requeue entry or ''}; the reported
--           session is taken back when only lost data explains it (_region.lua
--           `adopt`), a reservation at or below the agent's max epoch is
--           issued again above it (`refence`), and a session the agent no
--           longer serves, and did not end, is re-placed (see below);
--          or {'unknown'} when the instance must register again.
local iid, now, reported = ARGV[1], now_ms(ARGV[2]), ARGV[3]
local rsid, repoch, claim_ms = ARGV[4], ARGV[5], tonumber(ARGV[6])
local max_epoch, adoptable = ARGV[7] or '', ARGV[8] == '1'
local esid, eepoch = ARGV[9] or '', ARGV[10] or ''
local state = redis.call('HGET', K_STATE, iid)
if not state or state == 'terminated' then return {'unknown'} end
redis.call('ZADD', K_HB, now, iid)
local entry, requeued = false, false

-- The region has the instance serve a session the agent does not report.
-- Streaming: the agent saw its player, so it knew the session; if it did not
-- end it either (that end is the agent's event to report, and the API settles
-- it from this heartbeat too), the agent lost it: it restarted, and its
-- registration (which re-places the session, region_register) was lost with
-- Redis' last writes. Reserved or streaming while the agent serves a newer
-- epoch: only lost writes explain it, and the agent's session wins (`adopt`).
-- Either way the session is re-placed, as a restart's registration would.
local held = redis.call('HGET', K_SESS, iid)
if held and (state == 'reserved' or state == 'streaming') then
  local held_epoch = redis.call('HGET', K_EPOCH, iid)
  local reports = rsid == held and repoch == held_epoch
  local ended = esid == held and eepoch == held_epoch
  local newer = adoptable and rsid ~= '' and (tonumber(repoch) or 0) > (tonumber(held_epoch) or 0)
  if not reports and not ended and (state == 'streaming' or newer) then
    requeued = requeue_serving(iid, after_session(iid), now)
    state = redis.call('HGET', K_STATE, iid)
  end
end
if state == 'lost' then
  -- Back from the dead: whatever it served is over; it must reset first.
  set_state(iid, 'recycling', now)
  state = 'recycling'
end
if state == 'provisioning' and reported ~= 'provisioning' then
  set_state(iid, 'booting', now)
  state = 'booting'
end
if reported == 'ready' and (state == 'booting' or state == 'recycling') then
  raise_epoch(iid, max_epoch)  -- before it may be handed a queued session
  entry = become_ready(iid, now, claim_ms)
  state = redis.call('HGET', K_STATE, iid)
elseif adoptable and (reported == 'reserved' or reported == 'streaming') then
  entry = adopt(iid, rsid, repoch, reported == 'streaming', now, claim_ms)
  state = redis.call('HGET', K_STATE, iid)
end
if not entry then entry = refence(iid, max_epoch, rsid, repoch, now, claim_ms) end
raise_epoch(iid, max_epoch)
local sid = redis.call('HGET', K_SESS, iid) or ''
local epoch = redis.call('HGET', K_EPOCH, iid) or '0'
local commands = {}
if redis.call('HGET', K_DRAIN, iid) == '1' then table.insert(commands, 'drain') end
if rsid ~= '' and (rsid ~= sid or repoch ~= epoch) then table.insert(commands, 'end_session') end
local claim = redis.call('ZSCORE', K_CLAIMS, iid) or ''
return {state, sid, epoch, claim, table.concat(commands, ','), entry or '', requeued or ''}

-- Region prelude. KEYS are control_plane/keys.py REGION_KEY_NAMES, in order.
local K_STATE, K_EPOCH, K_SESS, K_IP, K_SINCE, K_DRAIN, K_READY, K_HB,
      K_CLAIMS, K_DISC, K_QUEUE, K_QDL, K_OUTBOX, K_META, K_INFO, K_GONE, K_COUNTS =
      KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8],
      KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16],
      KEYS[17]

-- Instances per state, kept here as states change, so views, metrics and
-- queue estimates read one small hash instead of the region's state hash.
-- `from` false: a new instance; `to` false: one forgotten (region_reap).
local function count_move(from, to)
  if from then redis.call('HINCRBY', K_COUNTS, from, -1) end
  if to then redis.call('HINCRBY', K_COUNTS, to, 1) end
end

-- The queue's version: bumped by every change of the queue's order or members,
-- so a reader (the waiting clients' event streams, control_plane/api/queue_feed.py)
-- reads the queue again only when it changed.
local function queue_changed()
  redis.call('HINCRBY', K_META, 'qv', 1)
end

-- Every instance state change goes through here (checked first, so a refused
-- move writes nothing); a move to the current state is a no-op.
local function set_state(iid, state, now)
  local from = redis.call('HGET', K_STATE, iid)
  if from == state then return end
  check_move('instance', iid, from or false, state)
  redis.call('HSET', K_STATE, iid, state)
  count_move(from, state)
  redis.call('HSET', K_SINCE, iid, now)
  if state == 'ready' then
    redis.call('ZADD', K_READY, now, iid)
  else
    redis.call('ZREM', K_READY, iid)
  end
  if state ~= 'reserved' then redis.call('ZREM', K_CLAIMS, iid) end
  if state ~= 'streaming' then redis.call('ZREM', K_DISC, iid) end
  if state == 'terminated' then
    redis.call('ZREM', K_HB, iid)
    redis.call('HDEL', K_DRAIN, iid)
  end
  -- Lost and terminated instances are forgotten after a retention (region_reap).
  if state == 'lost' or state == 'terminated' then
    redis.call('ZADD', K_GONE, now, iid)
  elseif from == 'lost' then
    redis.call('ZREM', K_GONE, iid)
  end
end

-- Is `iid` serving (reserved or streaming) session `sid` at fencing `epoch`?
local function serves(iid, sid, epoch)
  local state = redis.call('HGET', K_STATE, iid)
  return (state == 'reserved' or state == 'streaming')
    and redis.call('HGET', K_SESS, iid) == sid
    and redis.call('HGET', K_EPOCH, iid) == epoch
end

-- Where an instance goes when its session is over: ops' drain wins.
local function after_session(iid)
  if redis.call('HGET', K_DRAIN, iid) == '1' then return 'draining' end
  return 'recycling'
end

-- Reserve the oldest ready, freshly heartbeating instance for session `sid`.
-- Returns iid, epoch, claim deadline; or false, why ('queue_ahead' when others
-- already wait here: no jumping the queue; 'no_capacity').
local function reserve_ready(sid, now, claim_ms, fresh_ms)
  if redis.call('ZCARD', K_QUEUE) > 0 then return false, 'queue_ahead' end
  for _ = 1, 16 do
    local head = redis.call('ZRANGE', K_READY, 0, 0)
    local iid = head[1]
    if iid == nil then return false, 'no_capacity' end
    local hb = tonumber(redis.call('ZSCORE', K_HB, iid) or '0')
    if hb >= now - fresh_ms and redis.call('HGET', K_STATE, iid) == 'ready' then
      local epoch = redis.call('HINCRBY', K_EPOCH, iid, 1)
      set_state(iid, 'reserved', now)
      redis.call('HSET', K_SESS, iid, sid)
      local deadline = now + claim_ms
      redis.call('ZADD', K_CLAIMS, deadline, iid)
      return iid, epoch, deadline
    end
    -- Stale or inconsistent: not assignable; the reaper decides whether it is lost.
    redis.call('ZREM', K_READY, iid)
  end
  return false, 'no_capacity'
end

-- Hand a freshly ready instance straight to the head of the queue (oldest
-- ticket first). The session side (bind) is owed by the caller; the outbox
-- entry makes sure a crashed caller's bind is finished by the reaper.
-- Returns the outbox entry, or false.
local function serve_queue_head(iid, now, claim_ms)
  local head = redis.call('ZRANGE', K_QUEUE, 0, 0)
  if head[1] == nil then return false end
  local sid = head[1]
  set_state(iid, 'reserved', now)
  redis.call('ZREM', K_QUEUE, sid)
  redis.call('ZREM', K_QDL, sid)
  queue_changed()
  local epoch = redis.call('HINCRBY', K_EPOCH, iid, 1)
  redis.call('HSET', K_SESS, iid, sid)
  local deadline = now + claim_ms
  redis.call('ZADD', K_CLAIMS, deadline, iid)
  local entry = outbox_bind(sid, iid, epoch, redis.call('HGET', K_IP, iid), deadline)
  redis.call('ZADD', K_OUTBOX, now, entry)
  return entry
end

-- An instance that stopped serving a session owes that session its end or
-- re-placement (an outbox entry) until the entry is settled. Until then it is
-- handed to nobody: a caller that crashed between the region's script and the
-- settle (the reaper settles after the outbox grace) would otherwise leave the
-- old session live on the instance while a new one is bound to it.
local function owe(iid, entry)
  redis.call('HSET', K_INFO, iid .. '|owed', entry)
end

-- Is the instance's last owed entry still unsettled? (A settled one is struck
-- off the outbox; its mark is dropped here, lazily, so striking stays one call.)
local function owes(iid)
  local entry = redis.call('HGET', K_INFO, iid .. '|owed')
  if not entry then return false end
  if redis.call('ZSCORE', K_OUTBOX, entry) then return true end
  redis.call('HDEL', K_INFO, iid .. '|owed')
  return false
end

-- The instance became idle and usable: queue first, else the ready set.
-- Not while it owes its last session a follow-up (`owes`): it stays as it is,
-- and its next heartbeat after the settle makes it ready.
local function become_ready(iid, now, claim_ms)
  if owes(iid) then return false end
  if redis.call('HGET', K_DRAIN, iid) == '1' then
    set_state(iid, 'draining', now)
    return false
  end
  set_state(iid, 'ready', now)
  redis.call('HDEL', K_SESS, iid)
  return serve_queue_head(iid, now, claim_ms)
end

-- The instance stops serving its session for `reason`; the session side
-- (end with that reason, epoch-fenced) is owed through the outbox.
local function stop_serving(iid, to_state, reason, now)
  local sid = redis.call('HGET', K_SESS, iid)
  local epoch = redis.call('HGET', K_EPOCH, iid)
  set_state(iid, to_state, now)
  redis.call('HDEL', K_SESS, iid)
  if sid then
    local entry = outbox_end(sid, iid, epoch, reason)
    redis.call('ZADD', K_OUTBOX, now, entry)
    owe(iid, entry)
    return entry
  end
  return false
end

-- The instance can no longer serve its session (lost, restarted, renderer
-- crashed): it goes to `to_state` and the session is owed a re-placement
-- (requeue entry, epoch-fenced), not an end. Returns the entry, or false.
local function requeue_serving(iid, to_state, now)
  local sid = redis.call('HGET', K_SESS, iid)
  local epoch = redis.call('HGET', K_EPOCH, iid)
  set_state(iid, to_state, now)
  redis.call('HDEL', K_SESS, iid)
  if not sid then return false end
  local entry = outbox_requeue(sid, iid, epoch)
  redis.call('ZADD', K_OUTBOX, now, entry)
  owe(iid, entry)
  return entry
end

-- Fencing that survives the store: the agent reports the highest epoch it has
-- been assigned; the counter never stays below it, so the next assignment is
-- fresh from the agent's point of view even after Redis forgot. Epochs travel
-- as decimal strings (the wire bounds them far below float precision).
local function raise_epoch(iid, floor)
  if (tonumber(floor) or 0) > (tonumber(redis.call('HGET', K_EPOCH, iid)) or 0) then
    redis.call('HSET', K_EPOCH, iid, floor)
  end
end

-- The agent serves session `sid` at `epoch` but Redis does not know it here.
-- Only the store losing data explains an epoch above the counter (every epoch
-- is issued from it, and ending a session leaves it in place), so exactly then
-- the instance takes the session back in its current state (`connected`:
-- streaming, else reserved with a fresh claim) through the table's moves.
-- An instance ops drained, or one whose counter already reached the epoch (the
-- control plane ended that assignment), does not. `sid` is a well-formed
-- session id (the caller checked). Returns the rebuild outbox entry (the
-- session side is owed), or false.
local function adopt(iid, sid, epoch, connected, now, claim_ms)
  if sid == '' or redis.call('HGET', K_SESS, iid) then return false end
  if (tonumber(epoch) or 0) <= (tonumber(redis.call('HGET', K_EPOCH, iid)) or 0) then
    return false
  end
  local state = redis.call('HGET', K_STATE, iid)
  if state ~= 'booting' and state ~= 'recycling' and state ~= 'ready' then return false end
  if redis.call('HGET', K_DRAIN, iid) == '1' then return false end
  if state ~= 'ready' then set_state(iid, 'ready', now) end
  set_state(iid, 'reserved', now)
  redis.call('HSET', K_SESS, iid, sid)
  redis.call('HSET', K_EPOCH, iid, epoch)
  local deadline, session_state = '', 'connected'
  if connected then
    set_state(iid, 'streaming', now)
  else
    deadline, session_state = now + claim_ms, 'assigned'
    redis.call('ZADD', K_CLAIMS, deadline, iid)
  end
  local ip = redis.call('HGET', K_IP, iid)
  local entry = outbox_rebuild(sid, iid, epoch, ip, session_state, deadline)
  redis.call('ZADD', K_OUTBOX, now, entry)
  return entry
end

-- Lost writes put the counter below what the agent was assigned, and the
-- instance was reserved again at an epoch the agent has already seen (it would
-- refuse the assignment as stale and the user would wait out the claim). Only
-- lost data explains a reservation at or below `max_epoch` that the agent does
-- not hold, so it is issued again above it; the session side is owed the new
-- epoch (a rebuild entry) and its user's next read gets a token for it.
-- Returns the entry, or false.
local function refence(iid, max_epoch, rsid, repoch, now, claim_ms)
  local sid = redis.call('HGET', K_SESS, iid)
  local epoch = redis.call('HGET', K_EPOCH, iid)
  if redis.call('HGET', K_STATE, iid) ~= 'reserved' or not sid then return false end
  if (tonumber(max_epoch) or 0) < (tonumber(epoch) or 0) then return false end
  if sid == rsid and epoch == repoch then return false end
  local step = (tonumber(max_epoch) or 0) + 1 - tonumber(epoch)
  local fresh = redis.call('HINCRBY', K_EPOCH, iid, step)
  local deadline = now + claim_ms
  redis.call('ZADD', K_CLAIMS, deadline, iid)
  local ip = redis.call('HGET', K_IP, iid)
  local entry = outbox_rebuild(sid, iid, fresh, ip, 'assigned', deadline)
  redis.call('ZADD', K_OUTBOX, now, entry)
  return entry
end

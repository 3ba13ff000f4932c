-- Shared prelude, prepended to every script by control_plane/scripts.py
-- together with the generated transition tables (INSTANCE_NEXT and
-- SESSION_NEXT, from streamfleet/lifecycle.py, the one place transitions are
-- defined; the pseudo-state `new` lists the states a record may be created in).
--
-- Time: ARGV "now" in milliseconds when the caller injects a clock (tests);
-- empty means "ask Redis" so one clock orders everything.

local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function can_move(from, to)
  local nexts = INSTANCE_NEXT[from or 'new']
  return from == to or (nexts ~= nil and nexts[to] == true)
end

-- The one transition check. Called before any write of the move it guards,
-- so a refused move changes nothing. The error reply is typed:
-- "TRANSITION <kind> <id> <current or new> <wanted>" (control_plane/broker/store.py
-- turns it into lifecycle.TransitionError).
local function check_move(kind, id, from, to)
  local table_ = INSTANCE_NEXT
  if kind == 'session' then table_ = SESSION_NEXT end
  local nexts = table_[from or 'new']
  if from == to or (nexts ~= nil and nexts[to] == true) then return end
  error({err = 'TRANSITION ' .. kind .. ' ' .. id .. ' ' .. (from or 'new') .. ' ' .. to})
end

-- Outbox entries: the one encoding (control_plane/broker/outbox.py decodes it).
local function outbox_bind(sid, iid, epoch, ip, deadline)
  return table.concat({'bind', sid, iid, tostring(epoch), ip, tostring(deadline)}, '|')
end

local function outbox_end(sid, iid, epoch, reason)
  return table.concat({'end', sid, iid or '', epoch or '', reason}, '|')
end

-- The session lost its instance (or its renderer) at `epoch`: the session side
-- (back to the head of its queues, then placed again) is owed.
local function outbox_requeue(sid, iid, epoch)
  return table.concat({'requeue', sid, iid, tostring(epoch)}, '|')
end

-- A session rebuilt from its agent's report: the session side (recreate or
-- check the session hash) is owed, `state` 'assigned' or 'connected'.
local function outbox_rebuild(sid, iid, epoch, ip, state, deadline)
  return table.concat({'rebuild', sid, iid, tostring(epoch), ip, state, tostring(deadline)}, '|')
end

-- Fixed-window request counter shared by every replica (the session API's
-- rate limit, counted inside the create's first script). Returns the count
-- in this window and the ms until it resets.
local function rate_count(key, window_ms)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, window_ms) end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window_ms)
    ttl = window_ms
  end
  return n, ttl
end

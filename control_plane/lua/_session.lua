-- Session prelude. KEYS[1] = the client's live-session pointer (hash: sid,
-- state), KEYS[2] = the session hash. Both derive from the session id.
local K_CLIENT, K_SESSION = KEYS[1], KEYS[2]

local LIVE = {queued = true, assigned = true, connected = true}

-- Every session state change goes through here: checked, then written with
-- `fields` (a flat list of more field, value pairs), mirrored to the pointer.
local function session_move(sid, to, fields)
  local from = redis.call('HGET', K_SESSION, 'state')
  check_move('session', sid, from or false, to)
  redis.call('HSET', K_SESSION, 'state', to, unpack(fields))
  if to == 'queued' then
    redis.call('HSET', K_CLIENT, 'sid', sid, 'state', to)
  elseif redis.call('HGET', K_CLIENT, 'sid') == sid then
    if LIVE[to] then
      redis.call('HSET', K_CLIENT, 'state', to)
    else
      redis.call('DEL', K_CLIENT)
    end
  end
end

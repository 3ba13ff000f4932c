-- Session prelude. KEYS[1] = the client's live-session pointer (hash: sid,
-- state), KEYS[2] = the session hash. Both derive from the session id.
local K_CLIENT, K_SESSION = KEYS[1], KEYS[2]

local LIVE = {queued = true, assigned = true, connected = true}

local function mirror_state(sid, state)
  if redis.call('HGET', K_CLIENT, 'sid') == sid then
    redis.call('HSET', K_CLIENT, 'state', state)
  end
end

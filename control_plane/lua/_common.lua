-- Shared prelude, prepended to every script by control_plane/scripts.py
-- together with the generated transition table (INSTANCE_NEXT, from
-- streamfleet/lifecycle.py, the one place transitions are defined).
--
-- Time: ARGV "now" in milliseconds when the caller injects a clock (tests);
-- empty means "ask Redis" so one clock orders everything.

local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function can_move(from, to)
  local nexts = INSTANCE_NEXT[from]
  return nexts ~= nil and nexts[to] == true
end

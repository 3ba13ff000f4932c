-- placing: journal a session placement before its first write, so the reaper
-- finds a create whose caller died between its calls (broker/sessions.py).
-- KEYS: 1 the journal of the first-choice region (keys.region_key(r, 'placing')).
-- ARGV: 1 entry 'sid|ranked regions csv|queue regions csv', 2 now ms ('' = Redis TIME).
-- Returns: 1.
local now = ARGV[2]
if now == nil or now == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZADD', KEYS[1], tonumber(now), ARGV[1])
return 1

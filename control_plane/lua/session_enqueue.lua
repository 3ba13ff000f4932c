-- session_enqueue: give a waiting session its arrival ticket (kept on repeats,
-- so a retrying client never loses its place) and the regions it waits for.
-- KEYS: 1 client pointer, 2 session hash.
-- ARGV: 1 session id, 2 ticket, 3 regions it waits for (csv).
-- Returns: {1, ticket in force, queue deadline ms} or {0, state}.
local ticket, regions = ARGV[2], ARGV[3]  -- ARGV[1], the session id, names KEYS
local s = redis.call('HMGET', K_SESSION, 'state', 'ticket', 'queue_deadline_ms')
if s[1] ~= 'queued' then return {0, s[1] or 'unknown'} end
if not s[2] then
  redis.call('HSET', K_SESSION, 'ticket', ticket)
  s[2] = ticket
end
redis.call('HSET', K_SESSION, 'queue_regions', regions)
return {1, s[2], s[3]}

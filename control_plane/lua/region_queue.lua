-- region_queue: add a queued session to this region's queue, or take it out.
-- KEYS: the region keys.
-- ARGV: 1 'add' or 'remove', 2 session id, 3 ticket (global arrival order),
--       4 queue deadline ms.
-- Returns: {1, position (1-based) or 0 after remove, ready instances now}.
local op, sid = ARGV[1], ARGV[2]
if op == 'remove' then
  if redis.call('ZREM', K_QUEUE, sid) == 1 then queue_changed() end
  redis.call('ZREM', K_QDL, sid)
  return {1, 0, redis.call('ZCARD', K_READY)}
end
if redis.call('ZADD', K_QUEUE, 'NX', tonumber(ARGV[3]), sid) == 1 then queue_changed() end
redis.call('ZADD', K_QDL, 'NX', tonumber(ARGV[4]), sid)
return {1, redis.call('ZRANK', K_QUEUE, sid) + 1, redis.call('ZCARD', K_READY)}

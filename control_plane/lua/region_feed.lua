-- region_feed: what the waiting clients' event streams of one control-plane
-- process need from a region, in one call whatever the number of clients
-- (control_plane/api/queue_feed.py): the queue (only when its version moved
-- past the one the caller holds), the instances per state (capacity) and the
-- queue heads served in the estimate's window. One queued session's own view
-- (Broker.queue_position) reads the same with 0 members: one definition of
-- the capacity and the served window the estimates use.
-- KEYS: the region keys, then the region's `served` key.
-- ARGV: 1 the queue version the caller holds ('' = none), 2 now ms
--       ('' = Redis TIME), 3 the served window ms, 4 max queue members read
--       (0 = none: the counts and the window only).
-- Returns: {now ms, version, queue members (oldest ticket first) or false when
--           unchanged, counts {state, n, ...}, served in the window,
--           oldest served ms or '', newest served ms or ''}.
local K_SERVED = KEYS[#KEYS]
local now, window_ms, max = now_ms(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local version = redis.call('HGET', K_META, 'qv') or '0'
local members = false
if version ~= ARGV[1] and max > 0 then
  members = redis.call('ZRANGE', K_QUEUE, 0, max - 1)
end
local since = now - window_ms
local served = redis.call('ZCOUNT', K_SERVED, since, '+inf')
local oldest, newest = '', ''
if served > 0 then
  oldest = redis.call('ZRANGEBYSCORE', K_SERVED, since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)[2]
  newest = redis.call('ZRANGE', K_SERVED, -1, -1, 'WITHSCORES')[2]
end
return {now, version, members, redis.call('HGETALL', K_COUNTS), served, oldest, newest}

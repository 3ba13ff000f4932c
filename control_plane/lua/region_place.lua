-- region_place: the region side of a new session in one call (the create's
-- first round trip): the caller's request counted against its rate limit, the
-- arrival counted, a ready instance reserved; when none is, the placement
-- journaled (the session will wait in queues: several calls follow, and the
-- reaper finishes them if the caller dies; Sessions.resume_placement).
-- A reservation needs no journal: if the caller dies before the session
-- exists, the claim expires (or the streaming repair releases it after the
-- placing grace) and the instance is handed back.
-- KEYS: the region keys, then 18 arrivals per minute (keys.region_key(r, 'arrivals')),
--       19 the placement journal (keys.region_key(r, 'placing')),
--       20 the rate-limit counter (keys.region_ratelimit_key(r, bucket)).
-- ARGV: 1 session id, 2 now ms ('' = Redis TIME), 3 claim TTL ms,
--       4 heartbeat freshness ms, 5 journal entry ('' = never journal here),
--       6 requests allowed per rate window (0 = not counted), 7 rate window ms,
--       8 '1' to count an arrival this minute.
-- Returns: {1, instance id, private ip, epoch, claim deadline ms, now ms}
--          {0, 'queue_ahead' or 'no_capacity', now ms} (journaled when 5 is given)
--          {0, 'rate_limited', ms until the window resets}: nothing else was written.
local K_ARRIVALS, K_PLACING, K_RATE = KEYS[18], KEYS[19], KEYS[20]
local sid, now, claim_ms, fresh_ms = ARGV[1], now_ms(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local journal, allowed, window_ms = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
if allowed > 0 then
  local n, reset = rate_count(K_RATE, window_ms)
  if n > allowed then return {0, 'rate_limited', reset} end
end
if ARGV[8] == '1' then
  redis.call('HINCRBY', K_ARRIVALS, tostring(math.floor(now / 60000)), 1)
end
local iid, epoch_or_why, deadline = reserve_ready(sid, now, claim_ms, fresh_ms)
if iid then return {1, iid, redis.call('HGET', K_IP, iid), epoch_or_why, deadline, now} end
if journal ~= '' then redis.call('ZADD', K_PLACING, now, journal) end
return {0, epoch_or_why, now}

-- rate_limit: fixed-window request counter, shared by every replica.
-- KEYS: 1 the counter (keys.ratelimit_key(bucket)).
-- ARGV: 1 window length ms.
-- Returns: {count in this window, ms until the window resets}.
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1])) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
  ttl = tonumber(ARGV[1])
end
return {n, ttl}

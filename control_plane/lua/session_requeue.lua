-- session_requeue: the session's instance was lost at `epoch`: back to queued
-- (configuration and regions kept), to be placed again ahead of every new
-- arrival. Fenced by instance and epoch (epochs count per instance, so the
-- epoch alone could name the session's next instance); idempotent: a repeat
-- for the same instance and epoch answers {1} again while it is still queued.
-- KEYS: 1 client pointer, 2 session hash.
-- ARGV: 1 session id, 2 epoch, 3 now ms ('' = Redis TIME), 4 queue timeout ms,
--       5 most re-placements per session, 6 priority offset: the new ticket
--         is the re-placement time minus it, below every arrival ticket (those
--         count up from 1), so a re-placed session queues before any new
--         arrival, re-placed ones among themselves in the order they lost,
--       7 the instance it lost.
-- Returns: {1, ticket, queue deadline ms, re-placements so far, 1 when this
--          call moved it (0: a repeat)}, or
--          {0, state or 'stale_epoch' or 'limit'} (limit: the caller ends it
--          as instance_lost).
local sid, epoch, now = ARGV[1], ARGV[2], now_ms(ARGV[3])
local queue_ms, max, offset = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local iid = ARGV[7]
local from = iid .. ':' .. epoch
local s = redis.call('HMGET', K_SESSION, 'state', 'epoch', 'replaced', 'requeued_from',
  'ticket', 'queue_deadline_ms', 'instance_id')
local replaced = tonumber(s[3]) or 0
if s[1] == 'queued' and s[4] == from then return {1, s[5] or '', s[6] or '', replaced, 0} end
if s[1] ~= 'assigned' and s[1] ~= 'connected' then return {0, s[1] or 'unknown'} end
if s[2] ~= epoch or s[7] ~= iid then return {0, 'stale_epoch'} end
if replaced >= max then return {0, 'limit'} end
-- Formatted as an integer: tostring would round a double this large.
local ticket = string.format('%.0f', now - offset)
local deadline = now + queue_ms
session_move(sid, 'queued', {'replaced', replaced + 1, 'requeued_from', from,
  'requeued_ms', now, 'ticket', ticket, 'queue_deadline_ms', deadline,
  'previous_state', s[1]})
redis.call('HDEL', K_SESSION, 'region', 'instance_id', 'private_ip', 'epoch',
  'claim_deadline_ms')
return {1, ticket, deadline, replaced + 1, 1}

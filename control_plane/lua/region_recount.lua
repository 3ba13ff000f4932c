-- region_recount: rebuild the per-state counters (K_COUNTS, kept by set_state)
-- from the state hash, and mark them complete. Run by the first read of
-- counters never completed: a store from before them, or one that lost them.
-- KEYS: the region keys.
-- ARGV: none.
-- Returns: flat {state, count, ...} for every state that has instances.
local counts, out = {}, {}
for _, state in ipairs(redis.call('HVALS', K_STATE)) do
  counts[state] = (counts[state] or 0) + 1
end
redis.call('DEL', K_COUNTS)
for state, n in pairs(counts) do
  redis.call('HSET', K_COUNTS, state, n)
  table.insert(out, state)
  table.insert(out, n)
end
redis.call('HSET', K_COUNTS, 'v', '1')
return out

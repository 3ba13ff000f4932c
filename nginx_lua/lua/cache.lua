-- A bounded per-worker cache of verified tokens: a session presents the same
-- token (cookie) on every asset request and signaling reconnect, so the HMAC
-- and parsing run once per token per worker instead of once per request.
--
-- Only tokens that verified are stored, so invalid ones cannot fill it, and
-- the expiry is checked again on every hit. The key ring is immutable for a
-- worker's lifetime (a reload starts new workers with new keys and an empty
-- cache), so a cached verdict can never outlive the key that produced it.
--
-- Two generations instead of an LRU list: when `current` holds `size`
-- entries it becomes `previous` and a hit there is promoted. O(1), no
-- dependency, at most 2 * size entries.
local _M = {}

local mt = { __index = _M }

function _M.new(size)
    return setmetatable({ size = size, count = 0, current = {}, previous = {} }, mt)
end

function _M.get(self, key)
    local value = self.current[key]
    if value ~= nil then
        return value
    end
    value = self.previous[key]
    if value ~= nil then
        self:set(key, value)
    end
    return value
end

function _M.set(self, key, value)
    if self.count >= self.size then
        self.previous, self.current, self.count = self.current, {}, 0
    end
    if self.current[key] == nil then
        self.count = self.count + 1
    end
    self.current[key] = value
end

return _M

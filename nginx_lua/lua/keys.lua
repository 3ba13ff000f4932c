-- The router's key ring: a JSON object kid -> base64url key (docs/contracts.md,
-- the same shape as STREAMFLEET_TOKEN_KEYS). Read once per configuration load
-- (init_by_lua in the master; `nginx -s reload` re-reads it, which is how keys
-- rotate). Debian ships no JSON library for the Lua module, and the file's
-- grammar is tiny, so it is parsed strictly here and anything else is refused.
local b64 = require("ngx.base64")

local io_open = io.open
local gsub = string.gsub
local gmatch = string.gmatch
local match = string.match
local next = next

local _M = {}

local PAIR = '"([A-Za-z0-9_-]+)"%s*:%s*"([A-Za-z0-9_-]+)"'

--- Parse key-file text into {kid = raw key}, or nil, err.
function _M.parse(text)
    local keys = {}
    for kid, encoded in gmatch(text, PAIR) do
        if #kid > 32 then
            return nil, "kid longer than 32 characters: " .. kid
        end
        if #encoded % 4 == 1 then
            return nil, "key " .. kid .. " is not base64url"
        end
        local raw = b64.decode_base64url(encoded)
        if not raw or #raw < 32 then
            return nil, "key " .. kid .. " must be at least 32 bytes of base64url"
        end
        if keys[kid] then
            return nil, "duplicate kid " .. kid
        end
        keys[kid] = raw
    end
    -- Whatever is left after removing the pairs must be the object's frame.
    local rest = gsub(text, PAIR, "")
    if not match(rest, "^%s*{[%s,]*}%s*$") or next(keys) == nil then
        return nil, "expected a non-empty JSON object of kid -> base64url key"
    end
    return keys
end

function _M.load(path)
    local f, err = io_open(path, "rb")
    if not f then
        return nil, err
    end
    local text = f:read("*a")
    f:close()
    local keys, perr = _M.parse(text)
    if not keys then
        return nil, path .. ": " .. perr
    end
    return keys
end

return _M

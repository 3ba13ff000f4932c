-- Stream token verification, a line-for-line port of streamfleet.tokens.verify
-- (the authoritative codec). Both are held to tests/vectors/stream_tokens.json:
-- same verdict and the same error code for every vector.
--
--   v1.{kid}.{payload}.{sig}
--   payload = base64url(session_id|instance_id|private_ip|epoch|expires_unix)
--   sig     = base64url(HMAC-SHA256(key[kid], "v1.{kid}.{payload}"))
local b64 = require("ngx.base64")
local bit = require("bit")
local hmac = require("streamfleet.hmac")
local ipv4 = require("streamfleet.ipv4")

local byte = string.byte
local find = string.find
local sub = string.sub
local tonumber = tonumber
local bxor = bit.bxor
local bor = bit.bor
local decode_b64url = b64.decode_base64url

local _M = {}

_M.MAX_TOKEN_LENGTH = 512
local MAX_ID = 2 ^ 53

-- Splits on every separator, keeping empty fields (like Python's str.split);
-- gives up once more than `limit` fields are seen.
local function split(text, sep, limit)
    local out, n, start = {}, 0, 1
    while true do
        n = n + 1
        if n > limit then
            return nil
        end
        local at = find(text, sep, start, true)
        if not at then
            out[n] = sub(text, start)
            return out, n
        end
        out[n] = sub(text, start, at - 1)
        start = at + 1
    end
end

-- Strict unpadded base64url, as tokens.b64url_decode.
local function b64url(text)
    if not find(text, "^[A-Za-z0-9_-]+$") or #text % 4 == 1 then
        return nil
    end
    return decode_b64url(text)
end

local function equal_32(a, b)
    local diff = 0
    for i = 1, 32 do
        diff = bor(diff, bxor(byte(a, i), byte(b, i)))
    end
    return diff == 0
end

-- The id fields of the payload: streamfleet.ids.TOKEN_ID (session field) and
-- INSTANCE_ID, one rule; held to tests/vectors/identifiers.json.
local function is_id(s)
    return #s >= 1 and #s <= 64 and find(s, "^[A-Za-z0-9._-]+$") ~= nil
end
_M.is_id = is_id

-- streamfleet.ids.KEY_ID.
local function is_kid(s)
    return #s >= 1 and #s <= 32 and find(s, "^[A-Za-z0-9_-]+$") ~= nil
end
_M.is_kid = is_kid

local function is_decimal(s)
    return s == "0" or (#s <= 16 and find(s, "^[1-9]%d*$") ~= nil)
end

--- Verify `token` against `keys` (kid -> raw key) at time `now` (Unix seconds).
-- Returns claims {session_id, instance_id, private_ip, epoch, expires_unix},
-- or nil, code where code is one of malformed, unsupported_version,
-- unknown_kid, bad_signature, expired (TokenErrorCode in Python).
function _M.verify(token, keys, now)
    if type(token) ~= "string" or #token > _M.MAX_TOKEN_LENGTH
        or find(token, "[\128-\255]") then
        return nil, "malformed"
    end
    local parts, n = split(token, ".", 4)
    if not parts or n ~= 4 then
        return nil, "malformed"
    end
    local version, kid, payload, sig_text = parts[1], parts[2], parts[3], parts[4]
    if version ~= "v1" then
        return nil, "unsupported_version"
    end
    if not is_kid(kid) then
        return nil, "malformed"
    end
    local sig = b64url(sig_text)
    local raw = sig and b64url(payload)
    if not raw then
        return nil, "malformed"
    end
    local key = keys[kid]
    if not key then
        return nil, "unknown_kid"
    end
    -- Authenticate before interpreting anything the client controls.
    local mac, err = hmac.sha256(key, "v1." .. kid .. "." .. payload)
    if not mac then
        return nil, err
    end
    if #sig ~= 32 or not equal_32(sig, mac) then
        return nil, "bad_signature"
    end
    local fields, count = split(raw, "|", 5)
    if not fields or count ~= 5 then
        return nil, "malformed"
    end
    local session_id, instance_id, ip, epoch_text, expires_text =
        fields[1], fields[2], fields[3], fields[4], fields[5]
    if not is_decimal(epoch_text) or not is_decimal(expires_text) then
        return nil, "malformed"
    end
    local epoch, expires = tonumber(epoch_text), tonumber(expires_text)
    if not is_id(session_id) or not is_id(instance_id) or not ipv4.parse(ip)
        or epoch < 1 or epoch >= MAX_ID or expires <= 0 or expires >= MAX_ID then
        return nil, "malformed"
    end
    if now >= expires then
        return nil, "expired"
    end
    return {
        session_id = session_id,
        instance_id = instance_id,
        private_ip = ip,
        epoch = epoch,
        expires_unix = expires,
    }
end

return _M

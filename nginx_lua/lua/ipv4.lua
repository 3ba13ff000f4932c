-- Canonical dotted-quad parsing and CIDR membership, the same rule as
-- streamfleet.tokens.is_canonical_ipv4: four decimal octets 0-255, no leading
-- zeros, nothing else (no ports, no userinfo, no octal, no IPv6).
local tonumber = tonumber
local match = string.match
local floor = math.floor

local _M = {}

local function octet(text)
    if text == "0" or match(text, "^[1-9]%d?%d?$") then
        local n = tonumber(text)
        if n <= 255 then
            return n
        end
    end
    return nil
end

--- The address as an integer 0..2^32-1, or nil, err.
function _M.parse(text)
    if type(text) ~= "string" or #text > 15 then
        return nil, "not a dotted quad"
    end
    local a, b, c, d = match(text, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a then
        return nil, "not a dotted quad"
    end
    a, b, c, d = octet(a), octet(b), octet(c), octet(d)
    if not (a and b and c and d) then
        return nil, "bad octet"
    end
    return ((a * 256 + b) * 256 + c) * 256 + d
end

--- A CIDR as {base, size}, or nil, err. The base must be the network address.
function _M.parse_cidr(text)
    local addr, bits = match(text or "", "^([%d.]+)/(%d%d?)$")
    local base = addr and _M.parse(addr)
    bits = tonumber(bits)
    if not base or not bits or bits > 32 then
        return nil, "bad CIDR " .. tostring(text)
    end
    local size = 2 ^ (32 - bits)
    if base % size ~= 0 then
        return nil, "CIDR has host bits set: " .. text
    end
    return { base = base, size = size }
end

function _M.in_cidr(n, cidr)
    return floor(n / cidr.size) == cidr.base / cidr.size
end

return _M

-- Test-only endpoint (rendered only when the template's test_endpoints flag
-- is on): runs the real verifier with an injected clock so the shared token
-- vectors can be checked inside the real nginx; and the router's identifier
-- rules, so tests/vectors/identifiers.json can be checked the same way.
local ipv4 = require("streamfleet.ipv4")
local router = require("streamfleet.router")
local token_mod = require("streamfleet.token")

local ngx = ngx
local format = string.format
local tonumber = tonumber

local _M = {}

function _M.verify()
    local args = ngx.req.get_uri_args(4)
    local now = tonumber(args.now)
    if type(args.token) ~= "string" or not now then
        ngx.status = 400
        return ngx.say('{"error":"token and now required"}')
    end
    ngx.header["Content-Type"] = "application/json"
    local claims, err = token_mod.verify(args.token, router.keys(), now)
    if not claims then
        return ngx.say(format('{"ok":false,"error":"%s"}', err))
    end
    -- Claims are charset-checked by the verifier, so no JSON escaping is needed.
    return ngx.say(format(
        '{"ok":true,"claims":{"session_id":"%s","instance_id":"%s","private_ip":"%s",'
            .. '"epoch":%.0f,"expires_unix":%.0f}}',
        claims.session_id, claims.instance_id, claims.private_ip,
        claims.epoch, claims.expires_unix))
end

-- The router's copy of each identifier rule it enforces (streamfleet.ids).
local RULES = {
    ipv4 = function(text)
        return ipv4.parse(text) ~= nil
    end,
    token_id = token_mod.is_id,
    instance_id = token_mod.is_id,
    kid = token_mod.is_kid,
}

function _M.ids()
    local args = ngx.req.get_uri_args(4)
    local rule = RULES[args.rule]
    if not rule or type(args.text) ~= "string" then
        ngx.status = 400
        return ngx.say('{"error":"rule and text required"}')
    end
    ngx.header["Content-Type"] = "application/json"
    return ngx.say(rule(args.text) and '{"ok":true}' or '{"ok":false}')
end

return _M

-- The regional router's access handler: a request for /i/{ip}/{rest} is
-- proxied to http://{ip}:{agent_port}{rest} only when {ip} is a canonical
-- dotted quad inside this region's CIDR and a valid stream token (query
-- parameter `token` on the first request, then the cookie this handler sets)
-- names exactly that IP. Everything is decided from the raw request line
-- ($request_uri), never from nginx's decoded and normalised $uri, so encoded
-- dots, slashes or digits cannot smuggle a different target past the check.
local cache_mod = require("streamfleet.cache")
local ipv4 = require("streamfleet.ipv4")
local keys_mod = require("streamfleet.keys")
local redact = require("streamfleet.redact")
local token_mod = require("streamfleet.token")

local ngx = ngx
local ngx_var = ngx.var
local ngx_time = ngx.time
local ngx_exit = ngx.exit
local ngx_exec = ngx.exec
local ngx_say = ngx.say
local ngx_header = ngx.header
local unescape_uri = ngx.unescape_uri
local concat = table.concat
local find = string.find
local match = string.match
local sub = string.sub
local gsub = string.gsub
local floor = math.floor
local error = error

local _M = {}

_M.COOKIE = "sf_stream"
local MAX_COOKIE_CANDIDATES = 4
local ONLY_OUR_COOKIE = "^" .. _M.COOKIE .. "=([A-Za-z0-9._-]+)$"

local VERIFIED_CACHE_SIZE = 10000

local state = { keys = nil, cidr = nil, verified = cache_mod.new(VERIFIED_CACHE_SIZE) }

--- Called from init_by_lua (master, once per configuration load). Raises on
-- a bad key file or CIDR so that nginx refuses to start or reload rather than
-- serve with no keys.
function _M.init(opts)
    local keys, err = keys_mod.load(opts.key_file)
    if not keys then
        error("streamfleet router: cannot load key file: " .. err)
    end
    local cidr, cerr = ipv4.parse_cidr(opts.region_cidr)
    if not cidr then
        error("streamfleet router: " .. cerr)
    end
    state.keys, state.cidr = keys, cidr
    if opts.preload then
        -- Load in the master so workers inherit compiled code, and a module
        -- that cannot be found fails the start, not a request.
        for i = 1, #opts.preload do
            require(opts.preload[i])
        end
    end
end

function _M.keys()
    return state.keys
end

local function reject(status, reason)
    ngx_var.sf_reason = reason
    ngx.status = status
    ngx_header["Content-Type"] = "application/json"
    ngx_header["Cache-Control"] = "no-store"
    ngx_say('{"error":"', reason, '"}')
    return ngx_exit(status)
end

-- Path segments that change meaning after normalisation, or that some
-- upstream might decode differently, are refused outright.
local function safe_rest(rest)
    return not (find(rest, "//", 1, true) or find(rest, "\\", 1, true)
        or find(rest, "/%.%.?/") or find(rest, "/%.%.?$")
        or find(rest, "%%2[eEfF]") or find(rest, "%%5[cC]") or find(rest, "%%00")
        or find(rest, "%c"))
end

-- Removes every `token=` parameter from the raw query, keeping all others
-- byte for byte. Returns token (percent-decoded), remaining query, count.
local function take_token(query)
    if not find(query, "token=", 1, true) then
        return nil, query, 0
    end
    local kept, n, token, count, start = {}, 0, nil, 0, 1
    while true do
        local amp = find(query, "&", start, true)
        local piece = sub(query, start, (amp or 0) - 1)
        if sub(piece, 1, 6) == "token=" then
            count = count + 1
            token = unescape_uri(sub(piece, 7))
        else
            n = n + 1
            kept[n] = piece
        end
        if not amp then
            break
        end
        start = amp + 1
    end
    return token, concat(kept, "&"), count
end

-- Splits the Cookie header into our token candidates and the other cookies,
-- which still go upstream.
local function split_cookies(header)
    if header == "" then
        return {}, ""
    end
    -- The common case, only our cookie, without building any tables.
    local only = match(header, ONLY_OUR_COOKIE)
    if only then
        return { only }, ""
    end
    local mine, others, n = {}, {}, 0
    for piece in string.gmatch(header, "[^;]+") do
        local name, value = match(piece, "^%s*([^=%s]+)%s*=%s*(.-)%s*$")
        if name == _M.COOKIE then
            if #mine < MAX_COOKIE_CANDIDATES then
                mine[#mine + 1] = value
            end
        else
            n = n + 1
            others[n] = gsub(piece, "^%s+", "")
        end
    end
    return mine, concat(others, "; ")
end

local function verify_for(token, ip, now)
    local verified = state.verified
    local claims = verified:get(token)
    if claims then
        if now >= claims.expires_unix then
            return nil, "expired"
        end
    else
        local err
        claims, err = token_mod.verify(token, state.keys, now)
        if not claims then
            return nil, err
        end
        verified:set(token, claims)
    end
    if claims.private_ip ~= ip then
        return nil, "wrong_instance"
    end
    return claims
end

function _M.access()
    local uri = ngx_var.request_uri
    local qpos = find(uri, "?", 1, true)
    local path = qpos and sub(uri, 1, qpos - 1) or uri
    local query = qpos and sub(uri, qpos + 1) or ""
    -- From here on nginx's own copy of the request line shows `token=***`:
    -- the error log writes that line on any upstream error (streamfleet.redact).
    redact.mask_request()

    local ip, rest = match(path, "^/i/([^/]*)(.*)$")
    if not ip then
        return reject(404, "not_found")
    end
    local addr = ipv4.parse(ip)
    if not addr then
        return reject(400, "bad_ip")
    end
    if not ipv4.in_cidr(addr, state.cidr) then
        return reject(404, "outside_region")
    end
    if rest == "" then
        -- The cookie is scoped to /i/{ip}/ and relative asset URLs need the
        -- slash, so the bare form is redirected (nothing goes upstream).
        ngx_header["Location"] = "/i/" .. ip .. "/" .. (qpos and "?" .. query or "")
        return ngx_exit(308)
    end
    if not safe_rest(rest) then
        return reject(400, "bad_path")
    end

    local now = ngx_time()
    local token, upstream_query, count = take_token(query)
    local mine, other_cookies = split_cookies(ngx_var.http_cookie or "")
    local claims, err
    if count > 1 then
        return reject(400, "duplicate_token")
    elseif token then
        claims, err = verify_for(token, ip, now)
        if claims then
            local max_age = floor(claims.expires_unix - now)
            ngx_var.sf_set_cookie = _M.COOKIE .. "=" .. token .. "; Path=/i/" .. ip
                .. "/; Max-Age=" .. max_age .. "; HttpOnly; Secure; SameSite=Strict"
        end
    elseif #mine > 0 then
        for i = 1, #mine do
            token = mine[i]
            claims, err = verify_for(token, ip, now)
            if claims then
                break
            end
        end
    else
        err = "no_token"
    end
    if not claims then
        return reject(403, err)
    end

    ngx_var.sf_ip = ip
    ngx_var.sf_session = claims.session_id
    ngx_var.sf_token = token
    ngx_var.sf_cookie = other_cookies
    ngx_var.sf_upstream_uri = upstream_query ~= "" and rest .. "?" .. upstream_query or rest
    if ngx_var.http_upgrade then
        -- WebSockets get their own location for the long read timeout.
        return ngx_exec("@sf_websocket")
    end
end

return _M

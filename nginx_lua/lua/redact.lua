-- Masks stream tokens in the raw request, in place, so nginx cannot log them.
--
-- nginx appends `request: "<request line>"` (and `referrer: "..."`) to every
-- error-log message about a request, e.g. a broken pipe on a proxied
-- WebSocket; no directive turns that off, and a browser's WebSocket can only
-- carry the token in the URL. So, once the access handler has copied what it
-- needs, the bytes of every `token=` value in the request line and the
-- Referer header are overwritten with `*` where nginx keeps them: $request,
-- $request_uri, $args and the error log all read those same bytes.
--
-- ngx_http_lua_ffi_var_get (declared by resty.core.var, which lua-nginx-module
-- loads) hands back the variable's own pointer into the request buffer, not a
-- copy; that is what makes the in-place mask possible.
local ffi = require("ffi")
local base = require("resty.core.base")
require("resty.core.var")

local C = ffi.C
local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_fill = ffi.fill
local get_request = base.get_request
local find = string.find

local STAR = 42 -- "*"
local value_ptr = ffi_new("unsigned char *[1]")
local value_len = ffi_new("size_t[1]")
local err_ptr = ffi_new("char *[1]")

local _M = {}

-- Where each secret parameter's value lies in s: a list of {start, length}.
function _M.spans(s)
    local spans = {}
    local from = 1
    while true do
        local _, stop = find(s, "token=", from, true)
        if not stop then
            break
        end
        local value_end = (find(s, "[&# ]", stop + 1) or #s + 1) - 1
        if value_end > stop then
            spans[#spans + 1] = { stop + 1, value_end - stop }
        end
        from = stop + 1
    end
    return spans
end

local function mask_variable(r, name)
    local lowcase = ffi_new("char[?]", #name)
    local rc = C.ngx_http_lua_ffi_var_get(r, name, #name, lowcase, 0, value_ptr, value_len, err_ptr)
    if rc ~= 0 or value_ptr[0] == nil then
        return
    end
    local s = ffi_string(value_ptr[0], value_len[0])
    local spans = _M.spans(s)
    for i = 1, #spans do
        ffi_fill(value_ptr[0] + spans[i][1] - 1, spans[i][2], STAR)
    end
end

--- Mask every token in this request's line and Referer (call after reading them).
function _M.mask_request()
    local r = get_request()
    if not r then
        return
    end
    mask_variable(r, "request")
    mask_variable(r, "http_referer")
end

return _M

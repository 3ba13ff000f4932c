-- The router's Prometheus metrics, kept in the `sf_metrics` shared dict so
-- every worker counts into one place, and rendered in the Prometheus text
-- format by the metrics server (bound to loopback, see router.conf.tmpl).
--
-- Labels are bounded: `status` is an HTTP status code and `reason` is one of
-- the refusal reasons router.lua sets ($sf_reason: no_token, expired,
-- wrong_instance, outside_region, ...), empty for requests it let through.
local ngx = ngx
local ngx_var = ngx.var
local ngx_shared = ngx.shared
local ngx_say = ngx.say
local ngx_print = ngx.print
local ngx_header = ngx.header
local concat = table.concat
local sort = table.sort
local find = string.find
local sub = string.sub
local tonumber = tonumber
local ipairs = ipairs
local format = string.format

local _M = {}

local DICT = "sf_metrics"
local SEP = "|"
local REQUESTS = "req"
local DROPPED = "dropped"

-- Prometheus label values: escape backslash, double quote and newline.
local function label(value)
    value = value or ""
    value = value:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", "\\n")
    return value
end

--- log_by_lua: count one finished request by status and refusal reason.
function _M.log()
    local dict = ngx_shared[DICT]
    if not dict or ngx_var.uri == "/healthz" then
        return  -- health probes are not traffic (nor in the access log)
    end
    local key = REQUESTS .. SEP .. (ngx_var.status or "0") .. SEP .. (ngx_var.sf_reason or "")
    local _, err = dict:incr(key, 1, 0)
    if err then
        -- Out of memory in the dict: count that we lost a count, visibly.
        dict:incr(DROPPED, 1, 0)
    end
end

--- content_by_lua: the Prometheus text exposition of every counter.
function _M.render()
    local dict = ngx_shared[DICT]
    ngx_header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
    if not dict then
        ngx.status = 500
        ngx_say("# lua_shared_dict ", DICT, " is not configured")
        return
    end
    local lines = {}
    local function help(name, kind, text)
        lines[#lines + 1] = "# HELP " .. name .. " " .. text
        lines[#lines + 1] = "# TYPE " .. name .. " " .. kind
    end
    help("streamfleet_router_requests_total", "counter",
        "Requests the router answered, by status and refusal reason.")
    local keys = dict:get_keys(0)
    sort(keys)
    for i = 1, #keys do
        local key = keys[i]
        if sub(key, 1, #REQUESTS + 1) == REQUESTS .. SEP then
            local rest = sub(key, #REQUESTS + 2)
            local bar = find(rest, SEP, 1, true)
            if bar then
                local status, reason = sub(rest, 1, bar - 1), sub(rest, bar + 1)
                lines[#lines + 1] = format(
                    'streamfleet_router_requests_total{status="%s",reason="%s"} %d',
                    label(status), label(reason), tonumber(dict:get(key)) or 0)
            end
        end
    end
    help("streamfleet_router_metrics_dropped_total", "counter",
        "Counts lost because the metrics dict was full.")
    lines[#lines + 1] = "streamfleet_router_metrics_dropped_total "
        .. (tonumber(dict:get(DROPPED)) or 0)
    help("streamfleet_router_connections", "gauge", "Client connections of this nginx, by state.")
    for _, state in ipairs({ "active", "reading", "writing", "waiting" }) do
        lines[#lines + 1] = format('streamfleet_router_connections{state="%s"} %d',
            state, tonumber(ngx_var["connections_" .. state]) or 0)
    end
    lines[#lines + 1] = ""
    ngx_print(concat(lines, "\n"))
end

return _M

-- HMAC-SHA256 through LuaJIT FFI into libcrypto (OpenSSL 3's one-shot HMAC()).
-- The Debian Lua module has only ngx.hmac_sha1 built in. nginx itself is
-- linked against libcrypto, so the symbols are usually already in the global
-- namespace (ffi.C); we fall back to loading the library by name.
local ffi = require("ffi")

local ffi_new = ffi.new
local ffi_string = ffi.string
local pcall = pcall

local _M = {}

pcall(ffi.cdef, [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md,
                    unsigned int *md_len);
]])

local function find_libcrypto()
    local candidates = { false, "crypto", "libcrypto.so.3" }
    for i = 1, #candidates do
        local name = candidates[i]
        local ok, lib = pcall(function()
            local l = name and ffi.load(name) or ffi.C
            local _ = l.EVP_sha256 and l.HMAC -- resolves both symbols or raises
            return l
        end)
        if ok then
            return lib
        end
    end
    return nil
end

local crypto = find_libcrypto()
local sha256 = crypto and crypto.EVP_sha256()

-- One output buffer per worker: a worker runs one Lua handler at a time and
-- HMAC() never yields, so sharing it is safe and saves an allocation per call.
local md = ffi_new("unsigned char[32]")
local md_len = ffi_new("unsigned int[1]")

--- HMAC-SHA256(key, data) as 32 raw bytes, or nil, err.
function _M.sha256(key, data)
    if not sha256 then
        return nil, "libcrypto not available"
    end
    if crypto.HMAC(sha256, key, #key, data, #data, md, md_len) == nil then
        return nil, "HMAC failed"
    end
    return ffi_string(md, md_len[0])
end

return _M

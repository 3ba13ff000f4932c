-- The control plane's Redis scripts: Lua 5.1 with the globals Redis provides.
-- The script files are fragments (their preludes and the generated transition
-- table are prepended by control_plane/scripts.py); lint them as Redis runs
-- them with `make lint-lua` (scripts/lint_redis_lua.py), not file by file.
std = "lua51"
read_globals = { "redis", "KEYS", "ARGV", "cjson", "cmsgpack", "bit", "struct" }
max_line_length = 100

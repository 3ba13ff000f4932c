#!/usr/bin/env bash
# Fail early, with the fix, when a server binary the tests start is missing.
set -euo pipefail
for bin in redis-server redis-cli redis-benchmark nginx turnserver prometheus promtool; do
  command -v "$bin" >/dev/null || { echo "missing $bin: run 'make setup' as root" >&2; exit 1; }
done
test -f /usr/lib/nginx/modules/ngx_http_lua_module.so || { echo "missing nginx Lua module (libnginx-mod-http-lua)" >&2; exit 1; }

#!/usr/bin/env bash
# Make sure Node.js (>= 18) and npm are present: the web pages bundle Epic's
# Pixel Streaming frontend library with esbuild at `make setup`.
# Installs Debian's nodejs + npm when missing and we are root; otherwise says how.
set -euo pipefail
node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null &&
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ]
}
node_ok && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "==> installing Node.js and npm (apt-get install nodejs npm)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  node_ok && exit 0
fi
echo "missing Node.js >= 18 with npm: install them (Debian: apt-get install nodejs npm) and re-run make setup" >&2
exit 1

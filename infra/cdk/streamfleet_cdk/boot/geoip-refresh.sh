#!/bin/bash
# streamfleet-geoip: fetch the control plane's geo-IP City database and swap it in.
# Run at boot and by streamfleet-geoip.timer. The control plane re-reads the file
# when its modification time changes (control_plane/geo.py), so no restart.
# A download that fails, or a file that is not a City database, leaves the
# current one in place (and the unit failed, for the logs and alarms).
set -euo pipefail
DEST='@@DEST@@'
REGION='@@REGION@@'
SOURCE='@@SOURCE@@'  # s3 or maxmind

install -d -m 0755 "$(dirname "$DEST")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case $SOURCE in
  s3)
    aws s3 cp --only-show-errors --region "$REGION" '@@OBJECT_URI@@' "$work/db.mmdb"
    ;;
  maxmind)
    # Credentials go to curl through a netrc file in a private directory: never
    # on a command line (visible in ps) and never on disk outside $work.
    aws secretsmanager get-secret-value --region "$REGION" --secret-id '@@SECRET@@' \
      --query SecretString --output text >"$work/licence.json"
    /opt/streamfleet/venv/bin/python - "$work/licence.json" >"$work/netrc" <<'PY'
import json, sys
licence = json.load(open(sys.argv[1]))
print(f"machine download.maxmind.com login {licence['account_id']} password {licence['license_key']}")
PY
    url='https://download.maxmind.com/geoip/databases/@@EDITION@@/download'
    curl -sfL --netrc-file "$work/netrc" -o "$work/db.tar.gz" "$url?suffix=tar.gz"
    curl -sfL --netrc-file "$work/netrc" -o "$work/db.tar.gz.sha256" "$url?suffix=tar.gz.sha256"
    echo "$(cut -d' ' -f1 "$work/db.tar.gz.sha256")  $work/db.tar.gz" | sha256sum -c --quiet
    tar -xzf "$work/db.tar.gz" -C "$work" --wildcards --no-anchored --strip-components=1 '@@EDITION@@.mmdb'
    mv "$work/@@EDITION@@.mmdb" "$work/db.mmdb"
    ;;
  *) echo "streamfleet-geoip: unknown source $SOURCE" >&2; exit 2 ;;
esac

# Only a readable City database replaces the current one.
/opt/streamfleet/venv/bin/python - "$work/db.mmdb" <<'PY'
import sys
import geoip2.database
kind = geoip2.database.Reader(sys.argv[1]).metadata().database_type
if "City" not in kind:
    sys.exit(f"not a City database: {kind}")
PY
chmod 0644 "$work/db.mmdb"
# Same directory, then rename: the control plane never reads a half-written file.
cp "$work/db.mmdb" "$DEST.new"
mv -f "$DEST.new" "$DEST"
echo "streamfleet-geoip: $DEST updated from $SOURCE"

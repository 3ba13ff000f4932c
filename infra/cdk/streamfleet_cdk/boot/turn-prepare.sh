#!/bin/bash
# ExecStartPre of streamfleet-turn.service: the repository's coturn settings
# (regional_stack/coturn/turnserver.conf) plus this instance's addresses, the
# relay peers allowed (this region's VPC only) and the shared secret, written
# to /run (tmpfs) readable by coturn only.
set -euo pipefail
imds() {
  local token
  token=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
  curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}
region=$(imds placement/region)
ip=$(imds local-ipv4)
secret=$(aws secretsmanager get-secret-value --region "$region" --secret-id "@@TURN_SECRET@@" --query SecretString --output text)
base=$(/opt/streamfleet/venv/bin/python -c 'import importlib.resources as r; print(r.files("regional_stack.coturn") / "turnserver.conf")')
install -d -m 0755 /run/streamfleet
install -d -m 0755 -o turnserver -g turnserver /run/streamfleet/turn
umask 027
out=/run/streamfleet/turnserver.conf
{
  cat "$base"
  echo "# --- this instance (streamfleet-turn-prepare) ---"
  echo "listening-ip=$ip"
  # The relayed address handed to clients is the private one on purpose: only
  # the GPU instances (same VPC) send to it; clients reach port 3478 through
  # the Elastic IP, which AWS maps to this address.
  echo "relay-ip=$ip"
  echo "denied-peer-ip=0.0.0.0-255.255.255.255"
  echo "allowed-peer-ip=@@PEER_RANGE@@"
  echo "pidfile=/run/streamfleet/turn/turnserver.pid"
  echo "userdb=/var/lib/turn/turndb"
  echo "static-auth-secret=$secret"
} >"$out.tmp"
chgrp turnserver "$out.tmp"
mv "$out.tmp" "$out"

#!/bin/bash
# ExecStartPre of streamfleet-router.service: the token keys from Secrets
# Manager into a root-only key file (nginx reads it in the master process),
# then the repository's router config rendered by `streamfleet router-config`.
set -euo pipefail
imds() {
  local token
  token=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
  curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}
region=$(imds placement/region)
install -d -m 0755 /run/streamfleet
umask 077
aws secretsmanager get-secret-value --region "$region" --secret-id "@@TOKEN_KEYS@@" \
  --query SecretString --output text >/run/streamfleet/router-keys.json.tmp
mv /run/streamfleet/router-keys.json.tmp /run/streamfleet/router-keys.json
umask 022
/usr/local/bin/streamfleet router-config --prefix /run/streamfleet/router \
  --key-file /run/streamfleet/router-keys.json --region "@@REGION@@" \
  --listen "0.0.0.0:@@ROUTER_PORT@@" --region-cidr "@@REGION_CIDR@@" --agent-port "@@AGENT_PORT@@" \
  --access-log /var/log/streamfleet/router-access.log --error-log /var/log/streamfleet/router-error.log
/usr/sbin/nginx -t -q -p /run/streamfleet/router -c /run/streamfleet/router/conf/nginx.conf
# Owner-only logs: nginx writes the request line of errors it meets before the
# access handler masks tokens (docs/security.md); the master (root) opens them.
for log in /var/log/streamfleet/router-access.log /var/log/streamfleet/router-error.log; do
  touch "$log"
  chmod 0600 "$log"
done

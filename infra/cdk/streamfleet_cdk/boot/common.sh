#!/bin/bash
# streamfleet @@ROLE@@ node in @@REGION@@: first-boot setup (cloud-init runs this once).
# Installs streamfleet from this deployment's wheelhouse and the helpers the
# systemd units below use. Secrets never appear here: units fetch them at start.
set -euo pipefail
exec >>/var/log/streamfleet-bootstrap.log 2>&1
export DEBIAN_FRONTEND=noninteractive
REGION=@@REGION@@

apt-get update -q
apt-get install -y -q --no-install-recommends ca-certificates curl unzip python3-venv @@PACKAGES@@
command -v aws >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends awscli
id streamfleet >/dev/null 2>&1 || useradd --system --home-dir /var/lib/streamfleet --create-home --shell /usr/sbin/nologin streamfleet
install -d -m 0755 /opt/streamfleet /etc/streamfleet
install -d -m 0755 -o streamfleet -g streamfleet /var/log/streamfleet

# streamfleet itself, from this deployment's wheelhouse (a CDK asset): the wheel and
# every dependency pinned by hash in requirements-@@EXTRA@@.txt. No package index is
# ever asked, so every instance of a deployment runs exactly the same code.
# A GPU image baked by Image Builder (components/gpu_image.py) already holds the
# agent, installed the same way; its marker file says so.
if [ ! -f /opt/streamfleet/baked ]; then
  aws s3 cp --only-show-errors --region "$REGION" "s3://@@BUNDLE_BUCKET@@/@@BUNDLE_KEY@@" /opt/streamfleet/wheelhouse.zip
  rm -rf /opt/streamfleet/wheelhouse
  unzip -q /opt/streamfleet/wheelhouse.zip -d /opt/streamfleet/wheelhouse
  python3 -m venv /opt/streamfleet/venv
  /opt/streamfleet/venv/bin/pip install --quiet --disable-pip-version-check --no-index \
    --find-links /opt/streamfleet/wheelhouse --require-hashes \
    -r /opt/streamfleet/wheelhouse/requirements-@@EXTRA@@.txt
fi
ln -sf /opt/streamfleet/venv/bin/streamfleet /usr/local/bin/streamfleet

# streamfleet-env OUT VAR=secret:NAME|VAR=imds:PATH ...
# Writes a root-only systemd EnvironmentFile under /run (tmpfs). Units call it
# from ExecStartPre, so secrets are read at every start (a rotated secret takes
# effect on restart) and never reach the instance's disk.
cat >/usr/local/sbin/streamfleet-env <<'EOF'
#!/bin/bash
set -euo pipefail
out=$1; shift
umask 077
install -d -m 0755 "$(dirname "$out")"
imds() {
  local token
  token=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
  curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"
}
region=$(imds meta-data/placement/region)
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
for spec in "$@"; do
  var=${spec%%=*}
  src=${spec#*=}
  case $src in
    secret:*) value=$(aws secretsmanager get-secret-value --region "$region" --secret-id "${src#secret:}" --query SecretString --output text) ;;
    imds:*) value=$(imds "meta-data/${src#imds:}") ;;
    *) echo "streamfleet-env: unknown source for $var" >&2; exit 2 ;;
  esac
  case $value in
    *"'"* | *$'\n'*) echo "streamfleet-env: $var holds a quote or a newline" >&2; exit 2 ;;
  esac
  printf "%s='%s'\n" "$var" "$value" >>"$tmp"
done
mv "$tmp" "$out"
trap - EXIT
EOF
chmod 0755 /usr/local/sbin/streamfleet-env

# Logs of /var/log/streamfleet go to this role's log group (created by CDK with its retention).
curl -sfo /tmp/amazon-cloudwatch-agent.deb "https://amazoncloudwatch-agent-$REGION.s3.$REGION.amazonaws.com/debian/amd64/latest/amazon-cloudwatch-agent.deb"
dpkg -i -E /tmp/amazon-cloudwatch-agent.deb
rm -f /tmp/amazon-cloudwatch-agent.deb
cat >/opt/aws/amazon-cloudwatch-agent/etc/streamfleet.json <<'EOF'
@@CLOUDWATCH_AGENT_CONFIG@@
EOF

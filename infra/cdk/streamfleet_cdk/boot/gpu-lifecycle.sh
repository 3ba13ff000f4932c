#!/bin/bash
# Runs at every boot of a GPU instance (streamfleet-lifecycle.service).
# In the warm pool (target state Warmed:*) the instance is only pre-initialised:
# the agent must not register, or the control plane would assign an instance
# that is about to be stopped. Going InService, the agent starts and the launch
# hook completes once /healthz answers; if it never does, the hook is abandoned
# and the group replaces the instance.
set -uo pipefail
imds() {
  local token
  token=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token) &&
    curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}
complete() {
  aws autoscaling complete-lifecycle-action --region "$region" \
    --auto-scaling-group-name "@@GROUP@@" --lifecycle-hook-name "@@HOOK@@" \
    --instance-id "$instance" --lifecycle-action-result "$1" ||
    echo "no pending launch hook (a reboot in service?)"
}
region=$(imds placement/region)
instance=$(imds instance-id)
ip=$(imds local-ipv4)
state=""
for _ in $(seq 1 120); do
  state=$(imds autoscaling/target-lifecycle-state) && [ -n "$state" ] && break
  sleep 5
done
case $state in
  Warmed:*)
    complete CONTINUE ;;
  InService)
    systemctl start streamfleet-agent.service
    for _ in $(seq 1 @@READY_POLLS@@); do
      if curl -sf -o /dev/null "http://$ip:@@AGENT_PORT@@/healthz"; then
        complete CONTINUE
        exit 0
      fi
      sleep 5
    done
    echo "agent not healthy in time" >&2
    complete ABANDON
    exit 1 ;;
  *)
    echo "unexpected target lifecycle state: '$state'" >&2
    exit 1 ;;
esac

# Stable public address: this group's Elastic IP, moved to whichever instance
# the group (of one) is running.
instance=$(curl -sf -H "X-aws-ec2-metadata-token: $(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)" http://169.254.169.254/latest/meta-data/instance-id)
aws ec2 associate-address --region "$REGION" --allocation-id "@@ALLOCATION_ID@@" --instance-id "$instance" --allow-reassociation
systemctl disable --now coturn.service || true

#!/usr/bin/env bash
# executor-drain-watch ASG_NAME LIFECYCLE_HOOK_NAME
# Waits until this instance's Auto Scaling group starts terminating it (scale-in, instance
# refresh, a manual termination). The group's lifecycle hook holds the instance in
# Terminating:Wait meanwhile; the executor drains (running jobs finish and are reported), and
# only then is the lifecycle action completed, so the group terminates an idle instance.
set -euo pipefail
readonly asg_name=$1 hook_name=$2
readonly imds=http://169.254.169.254/latest
token_header=$(mktemp)
trap 'rm -f "$token_header"' EXIT

# IMDSv2: the session token goes in a header file, not on a command line.
imds_get() {
  curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$imds/api/token" |
    sed 's/^/X-aws-ec2-metadata-token: /' >"$token_header"
  curl -fsS --max-time 5 -H "@$token_header" "$imds/$1"
}

until [ "$(imds_get meta-data/autoscaling/target-lifecycle-state || true)" = Terminated ]; do
  sleep 5
done

echo "the Auto Scaling group is terminating this instance: draining the executor"
touch /run/executor-draining
systemctl stop executor.service || true

instance_id=$(imds_get meta-data/instance-id)
region=$(imds_get meta-data/placement/region)
aws autoscaling complete-lifecycle-action --region "$region" \
  --auto-scaling-group-name "$asg_name" --lifecycle-hook-name "$hook_name" \
  --instance-id "$instance_id" --lifecycle-action-result CONTINUE
echo "drained; the lifecycle action is complete"

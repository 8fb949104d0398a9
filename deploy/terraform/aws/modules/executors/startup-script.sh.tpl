#!/usr/bin/env bash
# User data of a Sandfleet executor on EC2 (stock Debian AMI). It runs on the first boot.
set -euo pipefail

readonly ASG_NAME='${asg_name}'
readonly LIFECYCLE_HOOK_NAME='${lifecycle_hook_name}'
readonly DRAIN_WATCH_B64='${drain_watch_b64}'

${install_executor}

# Scale-in drains instead of killing: the watcher completes the group's lifecycle hook once the
# executor has stopped.
install_drain_watch() {
  apt_install awscli
  printf '%s' "$DRAIN_WATCH_B64" | base64 -d >/usr/local/sbin/executor-drain-watch
  chmod 0755 /usr/local/sbin/executor-drain-watch
  cat >/etc/systemd/system/executor-drain-watch.service <<UNIT
[Unit]
Description=Drain the executor before the Auto Scaling group terminates this instance
After=executor.service network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/local/sbin/executor-drain-watch $ASG_NAME $LIFECYCLE_HOOK_NAME
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now executor-drain-watch.service
}

install_executor
install_drain_watch

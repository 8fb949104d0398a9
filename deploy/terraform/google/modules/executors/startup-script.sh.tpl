#!/usr/bin/env bash
# Startup script of a Sandfleet executor on Compute Engine (stock Debian image). It runs on every
# boot; each step is idempotent.
set -euo pipefail

readonly USE_LOCAL_SSD='${use_local_ssd}'
# The executor's state directory (its default EXECUTOR_STATE_DIR); not named so, since executor.env
# is loaded into this shell.
readonly LOCAL_SSD_STATE_DIR=/var/lib/sandfleet/executor

${install_executor}

# The image cache and runtime state go on the local NVMe SSD when there is one (its content is
# lost when the VM stops, which a cache can afford).
mount_local_ssd() {
  local device=/dev/disk/by-id/google-local-nvme-ssd-0
  [ -e "$device" ] || device=/dev/nvme0n1
  mountpoint -q "$LOCAL_SSD_STATE_DIR" && return 0
  # A reboot keeps the SSD's content; a stop or a new VM hands out a blank one.
  blkid "$device" >/dev/null || mkfs.ext4 -q -F "$device"
  mkdir -p "$LOCAL_SSD_STATE_DIR"
  mount -o discard,defaults "$device" "$LOCAL_SSD_STATE_DIR"
}

if [ "$USE_LOCAL_SSD" = true ]; then
  mount_local_ssd
fi
install_executor

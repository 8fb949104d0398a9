#!/usr/bin/env bash
# Startup script of the registry mirror (stock Debian image, Compute Engine or EC2): Debian's
# docker-registry (registry:2) as a pull-through cache of Docker Hub on :5000, its data on the
# persistent disk, and prometheus-exporter-exporter on :9999 serving the node and registry metrics.
# It runs on every boot; each step is idempotent.
set -euo pipefail

# Where the data disk may appear, by the cloud's stable names (validated paths, no spaces).
readonly DATA_DEVICES='${data_devices}'
readonly DATA_DIR=/mnt/registry

# The disk is attached after the machine starts: wait for it.
data_device() {
  local candidate
  for _ in $(seq 150); do
    for candidate in $DATA_DEVICES; do
      if [ -e "$candidate" ]; then
        echo "$candidate"
        return 0
      fi
    done
    sleep 2
  done
  echo "no data disk appeared at $DATA_DEVICES" >&2
  return 1
}

# Formats the data disk only when it holds no file system yet: a replaced VM keeps the cache.
mount_data_disk() {
  local device
  device=$(data_device)
  blkid "$device" >/dev/null || mkfs.ext4 -q -m 0 "$device"
  mkdir -p "$DATA_DIR"
  if ! grep -q " $DATA_DIR " /etc/fstab; then
    echo "$device $DATA_DIR ext4 discard,defaults,nofail 0 2" >>/etc/fstab
  fi
  mountpoint -q "$DATA_DIR" || mount "$DATA_DIR"
}

configure_registry() {
  mkdir -p /etc/docker/registry
  cat >/etc/docker/registry/config.yml <<CONFIG
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $DATA_DIR
  delete:
    enabled: true
http:
  addr: :5000
  debug:
    addr: 127.0.0.1:5001
    prometheus:
      enabled: true
      path: /metrics
proxy:
  remoteurl: https://registry-1.docker.io
CONFIG
  chown -R docker-registry: "$DATA_DIR"
}

configure_exporter() {
  cat >/etc/prometheus/exporter-exporter.yml <<CONFIG
modules:
  node:
    method: http
    http:
      port: 9100
  registry:
    method: http
    http:
      port: 5001
CONFIG
  echo 'ARGS="-config.file=/etc/prometheus/exporter-exporter.yml -web.listen-address=:9999"' >/etc/default/prometheus-exporter-exporter
}

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  docker-registry prometheus-node-exporter prometheus-exporter-exporter
mount_data_disk
configure_registry
configure_exporter
systemctl enable docker-registry prometheus-node-exporter prometheus-exporter-exporter
systemctl restart docker-registry prometheus-exporter-exporter

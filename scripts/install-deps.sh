#!/usr/bin/env bash
# Installs the Debian packages Sandfleet needs, skipping those already present, then npm packages.
#   scripts/install-deps.sh run    what `sandfleet up` needs
#   scripts/install-deps.sh test   what the test suite needs (adds sandboxes, registry, PostgreSQL client)
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-run}

packages=(git ca-certificates)
# Sandboxes: the local executor and the tests run steps in real sandboxes.
packages+=(bubblewrap crun runc runsc nftables iptables iproute2 uidmap busybox-static e2fsprogs util-linux mount tar)
# The seccomp allow-list bwrap and runc/crun run steps under, and libseccomp to compile it for bwrap.
packages+=(golang-github-containers-common python3-seccomp)
if [ "$purpose" = test ]; then
  # gcc (with libc6-dev) builds the static probe of the seccomp tests; shellcheck checks the
  # Terraform modules' startup scripts; openssl makes the throw-away TLS certificate of the local
  # Cloud Monitoring endpoint.
  packages+=(docker.io docker-registry postgresql-client python3 gcc libc6-dev chromium shellcheck openssl)
  # systemd-analyze verifies the units `install systemd` writes (installing it starts no service
  # where systemd is not PID 1).
  packages+=(systemd)
  # debootstrap builds the fresh Debian tree the executors' startup script is run in.
  packages+=(debootstrap)
  # QEMU boots the microVM guest under test; lz4 is the reference the kernel extraction is checked against.
  packages+=(qemu-system-x86 lz4)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  as_root=(); [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("Node.js >= 20.19 is required, found "+process.version); process.exit(1) }'
# npm ci only when the lock file changed since the last install.
stamp=node_modules/.sandfleet-lock-hash
hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$hash" ]; then
  npm ci --no-audit --no-fund
  echo "$hash" > "$stamp"
fi

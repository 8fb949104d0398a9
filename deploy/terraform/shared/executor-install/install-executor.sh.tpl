# Installs the Sandfleet executor from its release artifact and starts it under systemd.
# Shared by the Google and AWS executor startup scripts, which call install_executor last.
# Every value from Terraform arrives base64-encoded or validated to a safe alphabet, so no
# input can break out of its quotes. The script's own names start with INSTALL_: the
# executor's settings (EXECUTOR_*) are loaded into this shell from executor.env below, and one
# named like a readonly variable here would abort the script.
readonly INSTALL_BINARY_URL_B64='${executor_binary_url_b64}'
readonly INSTALL_BINARY_SHA256='${executor_binary_sha256}'
readonly INSTALL_RUNTIME='${runtime}'
readonly INSTALL_DRAIN_TIMEOUT_SECONDS='${drain_timeout_seconds}'
readonly INSTALL_ENV_B64='${env_file_b64}'
readonly INSTALL_PRIVATE_CA_CERT_B64='${private_ca_cert_b64}'
readonly INSTALL_RECYCLE_B64='${recycle_script_b64}'

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# The artifact is checked against its sha256 before it is installed: the URL may be plain HTTP
# or a mirror nobody vouches for.
install_executor_binary() {
  local url tmp
  url=$(printf '%s' "$INSTALL_BINARY_URL_B64" | base64 -d)
  tmp=$(mktemp)
  curl -fsSL --retry 5 --retry-connrefused -o "$tmp" "$url"
  if ! printf '%s  %s\n' "$INSTALL_BINARY_SHA256" "$tmp" | sha256sum --check --status; then
    rm -f "$tmp"
    echo "the executor artifact from $url does not match executor_binary_sha256" >&2
    exit 1
  fi
  install -m 0755 -o root -g root "$tmp" /usr/local/bin/executor
  rm -f "$tmp"
}

# git and Debian's tools read the system store; Node.js reads NODE_EXTRA_CA_CERTS (in executor.env).
install_private_ca() {
  [ -n "$INSTALL_PRIVATE_CA_CERT_B64" ] || return 0
  printf '%s' "$INSTALL_PRIVATE_CA_CERT_B64" | base64 -d >/etc/ssl/certs/private_ca_cert.pem
  chmod 0644 /etc/ssl/certs/private_ca_cert.pem
  cp /etc/ssl/certs/private_ca_cert.pem /usr/local/share/ca-certificates/private_ca_cert.crt
  update-ca-certificates
}

# executor.env holds the shared secret: written with umask 077, never world-readable.
write_executor_env() {
  (
    umask 077
    printf '%s' "$INSTALL_ENV_B64" | base64 -d >/etc/systemd/system/executor.env
  )
  chmod 0600 /etc/systemd/system/executor.env
}

# A stop (scale-in, shutdown, preemption) is a drain: SIGTERM goes to the executor alone, which
# takes no new job and exits once the running ones have been reported. KillMode=mixed keeps
# systemd from signalling the jobs' processes too, and the stop timeout gives the drain its time.
# After the executor exits by itself (EXECUTOR_NUM_TOTAL_JOBS, EXECUTOR_MAX_ACTIVE_TIME) the
# machine powers off and its group replaces it.
write_executor_dropin() {
  printf '%s' "$INSTALL_RECYCLE_B64" | base64 -d >/usr/local/sbin/executor-recycle
  chmod 0755 /usr/local/sbin/executor-recycle
  mkdir -p /etc/systemd/system/executor.service.d
  cat >/etc/systemd/system/executor.service.d/50-drain.conf <<DROPIN
[Service]
KillMode=mixed
TimeoutStopSec=$INSTALL_DRAIN_TIMEOUT_SECONDS
ExecStopPost=/usr/local/sbin/executor-recycle
DROPIN
}

install_executor() {
  apt-get update -qq
  apt_install ca-certificates curl git
  install_executor_binary
  install_private_ca
  executor install "$INSTALL_RUNTIME"
  # `install systemd` validates the executor's settings before it writes the unit, so it runs with
  # the module's env file loaded (its quoting reads the same in sh as in systemd); the file is then
  # written again as the module rendered it.
  write_executor_env
  (
    set -a
    # shellcheck disable=SC1091
    . /etc/systemd/system/executor.env
    set +a
    executor install systemd
  )
  write_executor_env
  write_executor_dropin
  systemctl daemon-reload
  systemctl enable --now executor
}

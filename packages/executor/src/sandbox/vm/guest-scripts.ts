/** The name of the virtio-serial port the agent listens on (QEMU `virtserialport,name=`). */
export const AGENT_PORT_NAME = 'sandfleet.agent';

/** The vsock port the agent listens on when the kernel command line says `sandfleet.agent=vsock`. */
export const AGENT_VSOCK_PORT = 52;

/**
 * Kernel command line words that choose the agent's channel. Without them the agent listens on
 * the virtio-serial port named AGENT_PORT_NAME (QEMU). Firecracker has no virtio-serial: there the
 * agent listens on vsock port AGENT_VSOCK_PORT. The loopback bridge is for hosts without any vsock
 * device: the guest then relays its virtio-serial agent port to its own vsock listener (CID 1), so
 * the vsock agent can be exercised end to end under QEMU.
 */
export const AGENT_OVER_VSOCK_ARG = 'sandfleet.agent=vsock';
export const VSOCK_LOOPBACK_BRIDGE_ARG = 'sandfleet.vsock_loopback_bridge=1';

/**
 * PID 1 of the guest: mounts the pseudo filesystems (and cgroup2, whose `step` group holds the
 * running step), loads the modules listed in /etc/modules-order (Debian builds them as modules),
 * configures eth0 from the kernel command line when the host gave the VM a NIC (Debian's kernel has
 * no `ip=` autoconfiguration, and it would run before the modules load), then runs the agent on
 * the channel the command line names, which the OOM killer never picks (oom_score_adj -1000; steps
 * reset theirs to 0), and powers off when it ends, so a dead agent means a stopped VM rather than
 * a guest nobody answers. Over vsock, socat accepts one connection and becomes the agent
 * (`nofork`: nothing sits between the socket and the agent).
 */
export const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup && mkdir /sys/fs/cgroup/step
for m in $(cat /etc/modules-order); do insmod "/lib/modules/$m.ko" || echo "init: insmod $m failed"; done
ip link set lo up
addr= gw= dns= channel=virtio bridge=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    sandfleet.ip=*) addr="\${arg#*=}" ;;
    sandfleet.gw=*) gw="\${arg#*=}" ;;
    sandfleet.dns=*) dns="\${arg#*=}" ;;
    ${AGENT_OVER_VSOCK_ARG}) channel=vsock ;;
    ${VSOCK_LOOPBACK_BRIDGE_ARG}) bridge=1 ;;
  esac
done
if [ -n "$addr" ]; then
  { ip link set eth0 up && ip addr add "$addr" dev eth0 && ip route add default via "$gw"; } || echo "init: network setup failed"
  for s in $(echo "$dns" | tr , ' '); do echo "nameserver $s"; done >/etc/resolv.conf
fi
echo -1000 >/proc/self/oom_score_adj
if [ "$channel" = vsock ]; then
  if [ -n "$bridge" ]; then
    for m in $(cat /etc/modules-loopback); do insmod "/lib/modules/$m.ko" || echo "init: insmod $m failed"; done
    ( port=$(/sbin/sandfleet-agent --find-port) || exit 1
      for i in $(seq 1 200); do socat VSOCK-CONNECT:1:${AGENT_VSOCK_PORT} OPEN:"$port" 2>/dev/null && exit 0; sleep 0.05; done
      echo "init: the vsock loopback bridge could not connect" ) &
  fi
  socat VSOCK-LISTEN:${AGENT_VSOCK_PORT} EXEC:"/sbin/sandfleet-agent --stdio",nofork
else
  /sbin/sandfleet-agent
fi
echo "init: agent exited with $?"
poweroff -f
`;

/**
 * The in-guest agent. Requests arrive one per line on the agent port:
 *   RUN <id> <wall-seconds> <base64 script>
 * and the agent answers with lines:
 *   READY                       once, when it listens
 *   O <id> <base64 chunk>       stdout, as it is produced (at most 1 KiB per chunk)
 *   E <id> <base64 chunk>       stderr
 *   EXIT <id> <code>            the step ended by itself
 *   TIMEOUT <id> <code>         the wall time ran out and the step's processes were killed
 *   OOM <id> <code>             the kernel's OOM killer killed a process during the step
 *   BAD <id>                    a malformed request
 * Each step runs in its own session and in the `step` cgroup: when it ends (or its wall time runs
 * out) every process left in the cgroup is killed, also those that left the session. The script
 * goes to a root-only file, not onto a command line, and the step does not inherit the channel.
 *
 * The channel: the virtio-serial port named AGENT_PORT_NAME; with `--stdio`, the socket on its
 * standard input (socat's vsock connection); `--find-port` prints the port's device and exits.
 */
export const AGENT_SCRIPT = `#!/bin/sh
find_port() {
  for i in $(seq 1 200); do
    for d in /sys/class/virtio-ports/*; do
      [ "$(cat "$d/name" 2>/dev/null)" = "${AGENT_PORT_NAME}" ] && [ -c "/dev/\${d##*/}" ] && { echo "/dev/\${d##*/}"; return 0; }
    done
    sleep 0.05
  done
  echo "agent: no virtio port named ${AGENT_PORT_NAME}" >&2
  return 1
}
case "$1" in
  --find-port) find_port; exit ;;
  --stdio) exec 3<&0 </dev/null >&2 ;;
  *) port=$(find_port) || exit 1; exec 3<>"$port" ;;
esac
# Nothing else the agent inherited (socat's listening socket) stays open.
for fd in 4 5 6 7 8 9; do eval "exec $fd>&-"; done

forward() { # <frame letter> <fifo>
  exec 4<"$2"
  while :; do
    chunk=$(dd bs=1024 count=1 <&4 2>/dev/null | base64 -w0)
    [ -z "$chunk" ] && break
    echo "$1 $id $chunk" >&3
  done
}

oom_kills() { sed -n 's/^oom_kill //p' /proc/vmstat; }

kill_step() { # kills every process of the step and waits until they are gone
  echo 1 >/sys/fs/cgroup/step/cgroup.kill 2>/dev/null
  kill -KILL -- "-$pid" 2>/dev/null
  for i in $(seq 1 250); do
    grep -q '^populated 0' /sys/fs/cgroup/step/cgroup.events && return
    sleep 0.02
  done
}

run_step() { # <id> <wall seconds> <base64 script>
  dir="/tmp/step.$id"
  mkdir -m 700 "$dir" && mkfifo "$dir/out" "$dir/err" && echo "$3" | base64 -d >"$dir/script" || { echo "BAD $id" >&3; return; }
  forward O "$dir/out" & f1=$!
  forward E "$dir/err" & f2=$!
  oom_before=$(oom_kills)
  setsid sh -c 'echo $$ >/sys/fs/cgroup/step/cgroup.procs && echo 0 >/proc/self/oom_score_adj && . "$0"' "$dir/script" <"/dev/null" >"$dir/out" 2>"$dir/err" 3>&- &
  pid=$!
  # The flag is written before the kill: once the step dies the agent stops this timer at once.
  # Its sleep is killed with it, so no timer outlives its step.
  ( trap 'kill "$s" 2>/dev/null; exit 0' TERM; sleep "$2" & s=$!; wait "$s" || exit 0; : >"$dir/timedout"; kill_step ) &
  timer=$!
  wait "$pid"
  code=$?
  kill "$timer" 2>/dev/null
  kill_step
  wait "$f1" "$f2"
  if [ -e "$dir/timedout" ]; then echo "TIMEOUT $id $code" >&3
  elif [ "$(oom_kills)" != "$oom_before" ]; then echo "OOM $id $code" >&3
  else echo "EXIT $id $code" >&3; fi
  rm -rf "$dir"
}

echo READY >&3
while read -r verb id wall script <&3; do
  case "$verb:$id:$wall" in
    RUN:*[!0-9]*:* | RUN::* | RUN:*:*[!0-9]* | RUN:*: ) echo "BAD $id" >&3 ;;
    RUN:*) run_step "$id" "$wall" "$script" ;;
    *) echo "BAD $id" >&3 ;;
  esac
done
`;

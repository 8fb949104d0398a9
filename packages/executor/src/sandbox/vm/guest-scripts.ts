/** The name of the virtio-serial port the agent listens on (QEMU `virtserialport,name=`). */
export const AGENT_PORT_NAME = 'sandfleet.agent';

/**
 * PID 1 of the guest: mounts the pseudo filesystems (and cgroup2, whose `step` group holds the
 * running step), loads the modules listed in /etc/modules-order (Debian builds them as modules),
 * configures eth0 from the kernel command line when the host gave the VM a NIC (Debian's kernel has
 * no `ip=` autoconfiguration, and it would run before the modules load), then runs the agent, which
 * the OOM killer never picks (oom_score_adj -1000; steps reset theirs to 0), and powers off when it
 * ends, so a dead agent means a stopped VM rather than a guest nobody answers.
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
addr= gw= dns=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    sandfleet.ip=*) addr="\${arg#*=}" ;;
    sandfleet.gw=*) gw="\${arg#*=}" ;;
    sandfleet.dns=*) dns="\${arg#*=}" ;;
  esac
done
if [ -n "$addr" ]; then
  { ip link set eth0 up && ip addr add "$addr" dev eth0 && ip route add default via "$gw"; } || echo "init: network setup failed"
  for s in $(echo "$dns" | tr , ' '); do echo "nameserver $s"; done >/etc/resolv.conf
fi
echo -1000 >/proc/self/oom_score_adj
/sbin/sandfleet-agent
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
 * goes to a root-only file, not onto a command line.
 */
export const AGENT_SCRIPT = `#!/bin/sh
port=
for i in $(seq 1 200); do
  for d in /sys/class/virtio-ports/*; do
    [ "$(cat "$d/name" 2>/dev/null)" = "${AGENT_PORT_NAME}" ] && [ -c "/dev/\${d##*/}" ] && port="/dev/\${d##*/}"
  done
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "agent: no virtio port named ${AGENT_PORT_NAME}"; exit 1; }
exec 3<>"$port"

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
  setsid sh -c 'echo $$ >/sys/fs/cgroup/step/cgroup.procs && echo 0 >/proc/self/oom_score_adj && . "$0"' "$dir/script" <"/dev/null" >"$dir/out" 2>"$dir/err" &
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

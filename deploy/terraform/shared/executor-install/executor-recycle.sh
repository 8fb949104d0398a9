#!/usr/bin/env bash
# ExecStopPost of executor.service. The executor exits 0 by itself once it reached
# EXECUTOR_NUM_TOTAL_JOBS or EXECUTOR_MAX_ACTIVE_TIME; the machine then powers off, and its
# instance group replaces it with a fresh one. A drain the cloud asked for (scale-in) leaves
# /run/executor-draining, and the drain's own script decides what happens next.
set -euo pipefail
[ "${EXIT_STATUS:-}" = 0 ] || exit 0
[ -e /run/executor-draining ] && exit 0
case "$(systemctl is-system-running || true)" in
  stopping) exit 0 ;;
esac
systemctl --no-block poweroff

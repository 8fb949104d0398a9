#!/usr/bin/env bash
# Shutdown script of a Sandfleet executor on Compute Engine: the group deletes this VM (scale-in,
# update) or preempts it. Stopping the unit drains the executor, so running jobs finish and are
# reported before it exits, within the shutdown period Compute Engine grants.
set -euo pipefail
touch /run/executor-draining
systemctl stop executor.service || true

#!/usr/bin/env bash
# Stands in for $RIFT in tests/slurm_cluster.rs: array task $RIFT_HOLD_TASK waits instead
# of running (a demo shard ends in about a second, too soon to be killed reliably), so the
# test can scancel it while it runs; every other call is the real rift, $RIFT_BIN.
set -euo pipefail
if [ "${SLURM_ARRAY_TASK_ID:-}" = "${RIFT_HOLD_TASK:?}" ]; then
    sleep 600
    echo "hold-task.sh: task $SLURM_ARRAY_TASK_ID was not cancelled" >&2
    exit 1
fi
exec "${RIFT_BIN:?}" "$@"

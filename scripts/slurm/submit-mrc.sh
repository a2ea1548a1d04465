#!/usr/bin/env bash
# Submits MRC over a cluster with Slurm: an N-task job array (one shard each), then a job
# that merges the shards once all succeeded and optionally continues with `rift run`.
#
#   scripts/slurm/submit-mrc.sh N SESSION_DIR -- <rift mrc flags…> [--then-run <rift run flags…>]
#
# e.g. scripts/slurm/submit-mrc.sh 8 sessions/wrn -- --checkpoint wrn34.pth \
#        --dataset cifar10 --data-dir ./data --fast --then-run --checkpoint wrn34.pth \
#        --dataset cifar10 --data-dir ./data --fast
# The MRC flags given to the shards and to `rift run` must agree (same model, data,
# attack, --seed and MRC settings), or the merge's scores do not belong to the run.
# Extra sbatch options (partition, account) go in SBATCH_* environment variables.
set -euo pipefail
n="${1:?usage: submit-mrc.sh N SESSION_DIR -- <rift mrc flags…> [--then-run <rift run flags…>]}"
session="${2:?usage: submit-mrc.sh N SESSION_DIR -- …}"
shift 2
[ "${1:-}" = "--" ] && shift
case "$n" in ''|*[!0-9]*|0) echo "submit-mrc.sh: N must be a positive number, got '$n'" >&2; exit 2;; esac
here="$(cd "$(dirname "$0")" && pwd)"
mrc=()
run=()
while [ $# -gt 0 ]; do
    if [ "$1" = "--then-run" ]; then shift; run=("$@"); break; fi
    mrc+=("$1"); shift
done
mkdir -p "$session"
array=$(sbatch --parsable --array="0-$((n - 1))" --export=ALL,RIFT_SHARDS="$n" \
    "$here/mrc-shard.sbatch" "$session" "${mrc[@]}")
array="${array%%;*}"
if [ ${#run[@]} -gt 0 ]; then
    merge=$(sbatch --parsable --dependency="afterok:$array" "$here/merge.sbatch" "$session" --run "${run[@]}")
else
    merge=$(sbatch --parsable --dependency="afterok:$array" "$here/merge.sbatch" "$session")
fi
echo "submitted MRC array $array ($n shards) and merge job ${merge%%;*} for $session"

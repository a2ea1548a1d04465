#!/usr/bin/env bash
# Submits MRC over a cluster with Slurm: an N-task job array (one shard each), then a job
# that merges the shards once all succeeded and optionally continues with `rift run`.
#
#   scripts/slurm/submit-mrc.sh [--only I[,J…]] N SESSION_DIR -- <rift mrc flags…> \
#       [--then-run <rift run flags…>]
#
# e.g. scripts/slurm/submit-mrc.sh 8 sessions/wrn -- --checkpoint wrn34.pth \
#        --dataset cifar10 --data-dir ./data --fast --then-run --checkpoint wrn34.pth \
#        --dataset cifar10 --data-dir ./data --fast
# The MRC flags given to the shards and to `rift run` must agree (same model, data,
# attack, --seed and MRC settings), or the merge's scores do not belong to the run.
#
# If a shard fails (or is cancelled), the merge job is cancelled with it
# (--kill-on-invalid-dep) instead of waiting forever; `rift merge SESSION_DIR` names the
# missing shard, and `--only I` resubmits just that shard (of the same N) and a new merge.
#
# Resources: every job asks for RIFT_CPUS_PER_TASK CPUs (default 8) and the generic
# resource RIFT_GRES (default gpu:1; set it empty, RIFT_GRES=, on a cluster without
# GPUs). They are sbatch options here rather than #SBATCH lines in the job scripts
# because an #SBATCH --gres cannot be taken back on the command line.
# Other sbatch options (partition, account) go in SBATCH_* environment variables;
# the rift binary the jobs run is $RIFT (default: rift on the job's PATH).
set -euo pipefail
usage="usage: submit-mrc.sh [--only I[,J…]] N SESSION_DIR -- <rift mrc flags…> [--then-run <rift run flags…>]"
only=""
if [ "${1:-}" = "--only" ]; then
    only="${2:?$usage}"
    shift 2
fi
n="${1:?$usage}"
session="${2:?$usage}"
shift 2
[ "${1:-}" = "--" ] && shift
case "$n" in ''|*[!0-9]*|0) echo "submit-mrc.sh: N must be a positive number, got '$n'" >&2; exit 2;; esac
tasks="0-$((n - 1))"
if [ -n "$only" ]; then
    for i in ${only//,/ }; do
        case "$i" in ''|*[!0-9]*) echo "submit-mrc.sh: --only takes shard numbers I,J…, got '$only'" >&2; exit 2;; esac
        if [ "$i" -ge "$n" ]; then echo "submit-mrc.sh: shard $i does not exist among $n (0 to $((n - 1)))" >&2; exit 2; fi
    done
    tasks="$only"
fi
cpus="${RIFT_CPUS_PER_TASK:-8}"
case "$cpus" in ''|*[!0-9]*|0) echo "submit-mrc.sh: RIFT_CPUS_PER_TASK must be a positive number, got '$cpus'" >&2; exit 2;; esac
resources=(--cpus-per-task="$cpus")
gres="${RIFT_GRES-gpu:1}"
[ -n "$gres" ] && resources+=(--gres="$gres")
here="$(cd "$(dirname "$0")" && pwd)"
mrc=()
run=()
while [ $# -gt 0 ]; do
    if [ "$1" = "--then-run" ]; then shift; run=("$@"); break; fi
    mrc+=("$1"); shift
done
mkdir -p "$session"
array=$(sbatch --parsable "${resources[@]}" --array="$tasks" --export=ALL,RIFT_SHARDS="$n" \
    "$here/mrc-shard.sbatch" "$session" "${mrc[@]}")
array="${array%%;*}"
after=(--dependency="afterok:$array" --kill-on-invalid-dep=yes)
if [ ${#run[@]} -gt 0 ]; then
    merge=$(sbatch --parsable "${resources[@]}" "${after[@]}" "$here/merge.sbatch" "$session" --run "${run[@]}")
else
    merge=$(sbatch --parsable "${resources[@]}" "${after[@]}" "$here/merge.sbatch" "$session")
fi
echo "submitted MRC array $array (shards $tasks of $n) and merge job ${merge%%;*} for $session"

#!/usr/bin/env bash
# scripts/tally.sh: the flake tally of BENCHMARKS.md. Clones the committed HEAD of this repository
# into a scratch directory (a fresh clone), keeps both cores busy with another job for the whole
# tally (stress-ng --cpu 2, started here with a --timeout, stopped by its PID), and runs
# scripts/test.sh RUNS times in a row there, stopping at the first failure. The first run
# builds; the others reuse its builds. Prints each run's result and time, then
# "tally: P/R runs passed".
#   scripts/tally.sh [RUNS]     RUNS default 10
#   SANITIZERS=...              passed to test.sh (default: its own, all four builds)
#   TALLY_DIR=DIR               where the clone and the logs go (default: a new /tmp directory)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

runs=${1:-10}
[[ $runs =~ ^[1-9][0-9]*$ ]] || {
    echo "tally.sh: RUNS must be a positive count" >&2
    exit 2
}
lc_ensure_packages git stress-ng
dir=${TALLY_DIR:-$(mktemp -d /tmp/leakcase-tally.XXXXXX)}
git clone -q "$LC_ROOT" "$dir/src"
echo "==> tally of scripts/test.sh in a fresh clone of $(git -C "$dir/src" rev-parse --short HEAD), $runs runs, logs in $dir"

# Long enough for every run (a run takes well under an hour); stopped below in any case.
stress-ng --cpu 2 --timeout $((runs * 3600))s >"$dir/stress.log" 2>&1 &
stress=$!
trap 'kill "$stress" 2>/dev/null || true' EXIT

passed=0
for run in $(seq "$runs"); do
    start=$(date +%s)
    if (cd "$dir/src" && scripts/test.sh) >"$dir/run-$run.log" 2>&1; then
        passed=$((passed + 1))
        echo "run $run: passed in $(($(date +%s) - start)) s ($(grep -o '[0-9]* skipped$' "$dir/run-$run.log" | tail -n 1))"
    else
        echo "run $run: FAILED in $(($(date +%s) - start)) s; the failures:"
        grep -E '\*\*\*(Failed|Timeout|Exception)|\(Failed\)|\(Timeout\)' "$dir/run-$run.log" | sed 's/^/    /'
        break
    fi
done
echo "tally: $passed/$runs runs passed (scripts/test.sh under stress-ng --cpu 2)"
[ "$passed" = "$runs" ]

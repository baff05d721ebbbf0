#!/usr/bin/env bash
# scripts/bench.sh: the benchmarks behind BENCHMARKS.md. Installs what is missing, builds, runs
# the sections asked for (default: all) and prints markdown tables. Every figure is a median of
# ROUNDS runs, and every ratio is against a baseline measured in the same invocation,
# interleaved with it, because these machines are shared and noisy.
#   scripts/bench.sh [service ...]      ROUNDS=3 DURATION=10s
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2086
lc_ensure_packages $LC_BUILD_PACKAGES $LC_TEST_PACKAGES
build_dir=${BUILD_DIR:-$LC_ROOT/build}
lc_build "$build_dir" >/dev/null
bin="$build_dir/bin"
. "$LC_ROOT/tests/lib.sh" # lc_start_server / lc_stop_server: port 0, cleanup by PID
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# wrk_rps URL CONNECTIONS: requests/s of one wrk -t1 run.
wrk_rps() {
    wrk -t1 -c"$2" -d"$DURATION" "$1" | awk '/^Requests\/sec:/ {print $2}'
}

# service: leaky vs the same service with a null store, wrk -t1 -c32. Servers get one event
# loop (--threads 1) so that server and wrk each have one of the two cores.
bench_service() {
    local round name rps
    : >"$LC_TMP/bare" && : >"$LC_TMP/leaky"
    for round in $(seq "$ROUNDS"); do
        for name in bare leaky; do
            local program=$bin/leaky
            [ "$name" = bare ] && program=$bin/bare_server
            HEAPPROF_RATE=${HEAPPROF_RATE:-524288} lc_start_server SRV "$program" --threads 1
            rps=$(wrk_rps "$SRV_URL/process" 32)
            lc_stop_server SRV
            echo "$rps" >>"$LC_TMP/$name"
            echo "  round $round $name: $rps req/s" >&2
        done
    done
    local bare leaky
    bare=$(median <"$LC_TMP/bare")
    leaky=$(median <"$LC_TMP/leaky")
    echo "### service: /process req/s, wrk -t1 -c32 -d$DURATION, --threads 1, median of $ROUNDS"
    echo
    echo "| server | req/s | vs bare |"
    echo "|---|---:|---:|"
    echo "| bare_server (null store) | $bare | 1.00 |"
    echo "| leaky | $leaky | $(awk -v a="$leaky" -v b="$bare" 'BEGIN {printf "%.3f", a/b}') |"
    echo
}

sections=("$@")
[ ${#sections[@]} -eq 0 ] && sections=(service)
echo "## $(date -u +%Y-%m-%d) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
for section in "${sections[@]}"; do
    case "$section" in
    service) bench_service ;;
    *) lc_fail "unknown section '$section' (have: service)" ;;
    esac
done

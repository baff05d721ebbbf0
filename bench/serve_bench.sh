#!/usr/bin/env bash
# bench/serve_bench.sh: time to serve the heap, threads and CPU profiles of a live leaky, and
# the server's peak RSS, for one build or a build against a baseline build (issue 12: the
# profiles used to be encoded, decoded and encoded again; the generic builder encodes once).
#
#   bench/serve_bench.sh BIN_DIR [BASE_BIN_DIR] [ROUNDS]
#
# Each round starts one leaky per build (HEAPPROF_RATE=4096, one event loop, port 0), fills it
# with 2 s of `loadgen --rate max`, then times (curl, to the last byte, 127.0.0.1) 5 fetches of
# /debug/pprof/heap, 5 of /debug/pprof/threads and 1 of /debug/pprof/profile?seconds=1 (the
# second of sampling subtracted), and reads VmHWM. Builds alternate within each round, so a
# slow spell of the shared machine hits both; the table gives medians over all fetches and the
# median of the per-round ratios new/base.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib.sh"
BIN=$1
BASE=${2:-}
ROUNDS=${3:-5}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
builds=(new)
[ -n "$BASE" ] && builds=(base new)

fetch_ms() { # URL [SUBTRACT_S]: milliseconds to the last byte, or fail
    local t
    t=$(curl -s -o "$LC_TMP/body" -w '%{http_code} %{time_total}' --max-time 30 "$1")
    [ "${t%% *}" = 200 ] || lc_fail "GET $1 answered ${t%% *}"
    awk -v t="${t#* }" -v s="${2:-0}" 'BEGIN {printf "%.2f\n", (t - s) * 1000}'
}

for round in $(seq "$ROUNDS"); do
    for b in "${builds[@]}"; do
        dir=$BIN
        [ "$b" = base ] && dir=$BASE
        HEAPPROF_RATE=4096 lc_start_server SRV "$dir/leaky" --threads 1
        "$dir/loadgen" --url "$SRV_URL/process" --rate max --duration 2s --connections 4 \
            >/dev/null 2>&1 || lc_fail "loadgen failed"
        for kind in heap threads; do
            for i in 1 2 3 4 5; do
                fetch_ms "$SRV_DEBUG_URL/debug/pprof/$kind" >>"$LC_TMP/$b-$kind-$round"
            done
        done
        fetch_ms "$SRV_DEBUG_URL/debug/pprof/profile?seconds=1" 1 >>"$LC_TMP/$b-cpu-$round"
        awk '/^VmHWM:/ {print $2}' "/proc/$SRV_PID/status" >>"$LC_TMP/$b-hwm-$round"
        lc_stop_server SRV
    done
done

echo "### serve: time to serve a profile of a live leaky (HEAPPROF_RATE=4096, after 2 s of loadgen --rate max), $ROUNDS rounds"
echo
if [ -n "$BASE" ]; then
    echo "| figure | base | new | median ratio new/base per round |"
    echo "|---|---:|---:|---:|"
else
    echo "| figure | value |"
    echo "|---|---:|"
fi
for kind in heap threads cpu hwm; do
    case $kind in
    heap) label="/debug/pprof/heap, ms (median of 5 per round)" ;;
    threads) label="/debug/pprof/threads, ms (median of 5 per round)" ;;
    cpu) label="/debug/pprof/profile?seconds=1, ms beyond the 1 s of sampling" ;;
    hwm) label="leaky's peak RSS (VmHWM) after serving, KiB" ;;
    esac
    for b in "${builds[@]}"; do
        for round in $(seq "$ROUNDS"); do
            median <"$LC_TMP/$b-$kind-$round" >>"$LC_TMP/$b-$kind-rounds"
        done
    done
    new=$(median <"$LC_TMP/new-$kind-rounds")
    if [ -n "$BASE" ]; then
        base=$(median <"$LC_TMP/base-$kind-rounds")
        ratio=$(paste "$LC_TMP/new-$kind-rounds" "$LC_TMP/base-$kind-rounds" |
            awk '{print ($2 > 0) ? $1 / $2 : 0}' | median)
        printf '| %s | %s | %s | %.3f |\n' "$label" "$base" "$new" "$ratio"
    else
        printf '| %s | %s |\n' "$label" "$new"
    fi
done
echo

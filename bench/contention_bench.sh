#!/usr/bin/env bash
# The contention figures (scripts/bench.sh contention), against the real programs on 127.0.0.1
# (port 0, killed by PID):
#   1. the lock interposer's cost: ns per uncontended pthread_mutex_lock+unlock pair
#      (bench/bench_locks) plain, preloaded with libheapprof.so (profiles off), and preloaded
#      with HEAPPROF_MUTEX_FRACTION=5 HEAPPROF_BLOCK_RATE=10000 (on): ROUNDS interleaved rounds,
#      medians and the median of per-round ratios; and the instructions per pair under
#      valgrind --tool=callgrind (the difference of two runs of N and 2N pairs, so start-up
#      cancels out), the figure a busy machine does not move;
#   2. /process req/s of fixed (batched) with both profiles on vs off: wrk -t1 -c32, ROUNDS
#      interleaved rounds, the median of per-round ratios;
#   3. the foil: fixed --sweep-mode scan vs batched at RATE req/s (open loop, loadgen) with
#      TTL (60 s: 300k live entries at 5000 req/s) for SECS seconds, sweeps every 10 s:
#      p99 / p99.9 of /process, the longest lock hold of a sweep (--verbose), and the top entry
#      of the mutex profile (HEAPPROF_MUTEX_FRACTION=1) by go tool pprof -top.
# Usage: bench/contention_bench.sh BUILD_DIR   env: ROUNDS (3), RATE (5000), TTL (60s),
#   SECS (80), SWEEP (10s), DURATION (10s, each wrk run)
set -eu
BUILD=$(cd "${1:-build}" && pwd) # absolute: LD_PRELOAD of a relative path is not loaded everywhere
BIN=$BUILD/bin
LIB=$BUILD/lib/libheapprof.so
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-5000}
TTL=${TTL:-60s}
SECS=${SECS:-80}
SWEEP=${SWEEP:-10s}
DURATION=${DURATION:-10s}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/contention-bench.XXXXXX")
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$OUT"' EXIT
for f in "$BIN/fixed" "$BIN/loadgen" "$BIN/bench_locks" "$LIB"; do
    [ -e "$f" ] || { echo "no $f: build first" >&2; exit 1; }
done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ON_ENV="HEAPPROF_MUTEX_FRACTION=5 HEAPPROF_BLOCK_RATE=10000"

# ---- 1. lock cost ---------------------------------------------------------------------------
pair_ns() { # MODE: ns per pair, one bench_locks run
    case $1 in
    plain) "$BIN/bench_locks" --iters 20000000 --reps 3 ;;
    off) LD_PRELOAD=$LIB "$BIN/bench_locks" --iters 20000000 --reps 3 ;;
    on) env $ON_ENV LD_PRELOAD="$LIB" "$BIN/bench_locks" --iters 20000000 --reps 3 ;;
    esac | sed -n 's/.*median=\([0-9.]*\).*/\1/p'
}
for round in $(seq "$ROUNDS"); do
    for mode in plain off on; do
        pair_ns $mode >"$OUT/ns-$mode-$round"
        echo "  round $round $mode: $(cat "$OUT/ns-$mode-$round") ns/pair" >&2
    done
    for mode in off on; do
        awk -v a="$(cat "$OUT/ns-$mode-$round")" -v b="$(cat "$OUT/ns-plain-$round")" \
            'BEGIN { print a / b }' >>"$OUT/ratio-$mode"
    done
done
# HEAPPROF_CHILDREN=1: valgrind's launcher is the process LD_PRELOAD reaches first, and the
# profiler takes itself out of the environment of the programs a process runs unless asked.
ir_per_pair() { # MODE
    local n
    for n in 100000 200000; do
        case $1 in
        plain) valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN/bench_locks" --iters $n --reps 1 ;;
        off) HEAPPROF_CHILDREN=1 LD_PRELOAD=$LIB valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN/bench_locks" --iters $n --reps 1 ;;
        on) env $ON_ENV HEAPPROF_CHILDREN=1 LD_PRELOAD="$LIB" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN/bench_locks" --iters $n --reps 1 ;;
        esac 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    done | awk 'NR == 1 { a = $1 } NR == 2 { printf "%.1f\n", ($1 - a) / 100000 }'
}
echo "### contention: cost of an uncontended pthread_mutex_lock + unlock pair (bench/bench_locks)"
echo
echo "| | ns/pair (median of $ROUNDS rounds) | ratio to glibc (median per round) | instructions/pair (callgrind) | ratio |"
echo "|---|---:|---:|---:|---:|"
ir_plain=$(ir_per_pair plain)
for mode in plain off on; do
    ns=$(cat "$OUT"/ns-$mode-* | median)
    ir=$(ir_per_pair $mode)
    if [ $mode = plain ]; then ratio=1; else ratio=$(median <"$OUT/ratio-$mode"); fi
    case $mode in
    plain) label="glibc (no profiler)" ;;
    off) label="LD_PRELOAD=libheapprof.so, profiles off" ;;
    on) label="preloaded, $ON_ENV" ;;
    esac
    printf '| %s | %.2f | %.3f | %s | %.3f |\n' "$label" "$ns" "$ratio" "$ir" \
        "$(awk -v a="$ir" -v b="$ir_plain" 'BEGIN { print a / b }')"
done
echo

# ---- servers ----------------------------------------------------------------------------------
start() { # start LABEL ENV... -- ARGS...: fixed on port 0; sets URL, DEBUG_URL, SERVER_PID
    local label=$1
    shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" "$BIN/fixed" --listen 127.0.0.1:0 --debug-listen 127.0.0.1:0 --threads 2 "$@" \
        >"$OUT/server.out" 2>"$OUT/$label.err" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        [ "$(grep -c '^listening ' "$OUT/server.out")" = 2 ] && break
        sleep 0.1
    done
    URL=$(sed -n 's#^listening /process \(http://.*\)$#\1#p' "$OUT/server.out")
    DEBUG_URL=$(sed -n 's#^listening /debug \(http://.*\)$#\1#p' "$OUT/server.out")
}
stop() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
}

# ---- 2. req/s with the profiles on ------------------------------------------------------------
if command -v wrk >/dev/null; then
    for round in $(seq "$ROUNDS"); do
        for mode in off on; do
            if [ $mode = on ]; then set -- HEAPPROF_MUTEX_FRACTION=5 HEAPPROF_BLOCK_RATE=10000; else set -- LC_NONE=1; fi
            start rps "$@" --
            wrk -t1 -c32 -d"$DURATION" "$URL/process" | awk '/^Requests\/sec:/ {print $2}' >"$OUT/rps-$mode-$round"
            stop
            echo "  round $round profiles $mode: $(cat "$OUT/rps-$mode-$round") req/s" >&2
        done
        awk -v a="$(cat "$OUT/rps-on-$round")" -v b="$(cat "$OUT/rps-off-$round")" 'BEGIN { print a / b }' >>"$OUT/rps-ratio"
    done
    echo "### contention: fixed /process req/s with both profiles on ($ON_ENV) vs off, wrk -t1 -c32 -d$DURATION, $ROUNDS rounds"
    echo
    echo "| profiles | median req/s | median ratio per round | ratios |"
    echo "|---|---:|---:|---|"
    echo "| off | $(cat "$OUT"/rps-off-* | median) | 1 | |"
    echo "| on | $(cat "$OUT"/rps-on-* | median) | $(median <"$OUT/rps-ratio") | $(awk '{printf "%s%.3f", (NR > 1 ? " " : ""), $1}' "$OUT/rps-ratio") |"
    echo
fi

# ---- 3. scan vs batched -----------------------------------------------------------------------
echo "### contention: fixed --sweep-mode scan vs batched, $RATE req/s open loop for ${SECS}s, --ttl $TTL --sweep-every $SWEEP, HEAPPROF_MUTEX_FRACTION=1"
echo
echo "| sweep | requests | p99 ms | p99.9 ms | max ms | entries at the end | longest lock hold of a sweep | mutex profile's top entry (flat delay) |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
for mode in scan batched; do
    start "$mode" HEAPPROF_MUTEX_FRACTION=1 -- --sweep-mode "$mode" --ttl "$TTL" --sweep-every "$SWEEP" --verbose
    "$BIN/loadgen" --url "$URL/process" --rate "$RATE" --duration "${SECS}s" --connections 16 \
        --out "$OUT/lg-$mode" >"$OUT/lg-$mode.txt" 2>&1 || true
    curl -s -o "$OUT/mutex-$mode.pb.gz" "$DEBUG_URL/debug/pprof/mutex"
    stop
    p() { sed -n "s/.*\"$1\": \\([0-9.]*\\).*/\\1/p" "$OUT/lg-$mode/report.json" | head -1; }
    hold=$(sed -n 's/.*longest lock hold \([0-9]*\) us.*/\1/p' "$OUT/$mode.err" | sort -n | tail -1)
    held=$(sed -n 's/.*; held \([0-9]*\) entries.*/\1/p' "$OUT/$mode.err" | tail -1)
    top="(go not installed)"
    if command -v go >/dev/null; then
        (cd "$OUT" && go tool pprof -top -nodecount=3 "mutex-$mode.pb.gz" >"$OUT/top-$mode.txt" 2>/dev/null) || true
        top=$(awk '/flat%/ { getline; print $1 " " $NF; exit }' "$OUT/top-$mode.txt")
        echo "--- $mode: go tool pprof -top .../debug/pprof/mutex" >&2
        head -12 "$OUT/top-$mode.txt" >&2
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s us | %s |\n' "$mode" "$(p requests)" "$(p p99)" \
        "$(p p999)" "$(p max)" "${held:-?}" "${hold:-?}" "${top:-none}"
done
echo

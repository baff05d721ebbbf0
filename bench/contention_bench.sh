#!/usr/bin/env bash
# The contention figures (scripts/bench.sh contention), against the real programs on 127.0.0.1
# (port 0, killed by PID):
#   1. the lock interposer's cost: ns per uncontended pthread_mutex_lock+unlock pair
#      (bench/bench_locks) plain, preloaded with libheapprof.so (profiles off), and preloaded
#      with HEAPPROF_MUTEX_FRACTION=5 HEAPPROF_BLOCK_RATE=10000 (on), each against glibc's own
#      functions in the same process (alternating batches), ROUNDS runs, medians; and the
#      instructions per pair under valgrind --tool=callgrind (the difference of two runs of N
#      and 2N pairs, so start-up cancels out), which a busy machine does not move but which
#      does not weigh instructions by their cost either;
#   2. /process of fixed (batched) with both profiles on vs off: req/s (wrk -t1 -c32) and the
#      server's CPU time per request at CPU_RATE req/s, ROUNDS interleaved rounds, the median
#      of per-round ratios;
#   2b. /process instructions per request under callgrind, profiles on vs off (no noise from
#      the machine's load; no production contention either);
#   3. the foil: fixed --sweep-mode scan vs batched at RATE req/s (open loop, loadgen) with
#      TTL (60 s: 300k live entries at 5000 req/s) for SECS seconds, sweeps every 10 s:
#      p99 / p99.9 of /process, the longest lock hold of a sweep (--verbose), and the top entry
#      of the mutex profile (HEAPPROF_MUTEX_FRACTION=1) by go tool pprof -top.
# Usage: bench/contention_bench.sh BUILD_DIR   env: ROUNDS (3), RATE (5000), TTL (60s),
#   SECS (80), SWEEP (10s), DURATION (10s, each wrk and CPU run), CPU_RATE (2000),
#   PARTS ("locks rps reqir sweep": which of 1, 2, 2b, 3 to run)
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
CPU_RATE=${CPU_RATE:-2000}
PARTS=${PARTS:-locks rps reqir sweep}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/contention-bench.XXXXXX")
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$OUT"' EXIT
for f in "$BIN/fixed" "$BIN/loadgen" "$BIN/bench_locks" "$LIB"; do
    [ -e "$f" ] || { echo "no $f: build first" >&2; exit 1; }
done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ON_ENV="HEAPPROF_MUTEX_FRACTION=5 HEAPPROF_BLOCK_RATE=10000"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 1. lock cost ---------------------------------------------------------------------------
# Each run compares in one process (bench_locks' vs_libc): the program's pthread_mutex_lock and
# unlock (the interposer's when preloaded) against glibc's own, in alternating batches, with a
# second idle thread (glibc's multi-threaded paths); wall time across processes drifts more
# than the effect on a shared machine. The plain run is the control (both sides glibc's: 1.000)
# and gives the floor: a function that only forwards to glibc's.
lock_run() { # MODE: the threads=2 line of one bench_locks run
    case $1 in
    plain) "$BIN/bench_locks" --iters 1000 --reps 1 ;;
    off) LD_PRELOAD=$LIB "$BIN/bench_locks" --iters 1000 --reps 1 ;;
    on) env $ON_ENV LD_PRELOAD="$LIB" "$BIN/bench_locks" --iters 1000 --reps 1 ;;
    esac | grep 'threads=2'
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
if part locks; then
for round in $(seq "$ROUNDS"); do
    for mode in plain off on; do
        lock_run $mode >"$OUT/lock-$mode-$round"
        echo "  round $round $mode: $(cat "$OUT/lock-$mode-$round")" >&2
    done
done
# HEAPPROF_CHILDREN=1: valgrind's launcher is the process LD_PRELOAD reaches first, and the
# profiler takes itself out of the environment of the programs a process runs unless asked.
ir_per_pair() { # MODE
    local n
    for n in 100000 200000; do
        case $1 in
        plain) valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN/bench_locks" --iters $n --reps 1 --batches 0 ;;
        off) HEAPPROF_CHILDREN=1 LD_PRELOAD=$LIB valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN/bench_locks" --iters $n --reps 1 --batches 0 ;;
        on) env $ON_ENV HEAPPROF_CHILDREN=1 LD_PRELOAD="$LIB" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN/bench_locks" --iters $n --reps 1 --batches 0 ;;
        esac 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    done | awk 'NR == 1 { a = $1 } NR == 2 { printf "%.1f\n", ($1 - a) / 100000 }'
}
echo "### contention: cost of an uncontended pthread_mutex_lock + unlock pair (bench/bench_locks, two threads)"
echo
echo "load average at start: $LOAD0"
echo
echo "| | glibc ns/pair | ns/pair | ratio to glibc, same process (median of $ROUNDS runs; each the median of 2000 batch ratios) | instructions/pair (callgrind) | ratio |"
echo "|---|---:|---:|---:|---:|---:|"
ir_plain=$(ir_per_pair plain)
for mode in plain off on; do
    libc_ns=$(cat "$OUT"/lock-$mode-* | field libc_ns | median)
    ns=$(cat "$OUT"/lock-$mode-* | field ns | median)
    ratio=$(cat "$OUT"/lock-$mode-* | field ratio_median | median)
    ir=$(ir_per_pair $mode)
    case $mode in
    plain) label="glibc against itself (no profiler: the method's error)" ;;
    off) label="LD_PRELOAD=libheapprof.so, profiles off" ;;
    on) label="preloaded, $ON_ENV" ;;
    esac
    printf '| %s | %.2f | %.2f | %.3f | %s | %.3f |\n' "$label" "$libc_ns" "$ns" "$ratio" "$ir" \
        "$(awk -v a="$ir" -v b="$ir_plain" 'BEGIN { print a / b }')"
done
printf '| a function that only forwards to glibc (the floor of any forwarding interposer) | | | %.3f | | |\n' \
    "$(cat "$OUT"/lock-plain-* | field forwarder_ratio | median)"
echo
fi

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
# Two figures per round, profiles off then on, each on a fresh server: closed-loop req/s (wrk),
# and the server's CPU time per request at a fixed open-loop rate (loadgen at CPU_RATE for
# DURATION; every thread's run time from /proc/PID/task/*/schedstat, in ns), which a machine
# busy with other work moves less than throughput (it does not count the time we wait for a
# core).
cpu_ns() { # PID: CPU time of all its threads so far
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
if part rps; then
    for round in $(seq "$ROUNDS"); do
        for mode in off on; do
            if [ $mode = on ]; then set -- HEAPPROF_MUTEX_FRACTION=5 HEAPPROF_BLOCK_RATE=10000; else set -- LC_NONE=1; fi
            start rps "$@" --
            if command -v wrk >/dev/null; then
                wrk -t1 -c32 -d"$DURATION" "$URL/process" | awk '/^Requests\/sec:/ {print $2}' >"$OUT/rps-$mode-$round"
            fi
            c0=$(cpu_ns "$SERVER_PID")
            "$BIN/loadgen" --url "$URL/process" --rate "$CPU_RATE" --duration "$DURATION" \
                --out "$OUT/cpu-$mode-$round" >/dev/null 2>&1 || true
            c1=$(cpu_ns "$SERVER_PID")
            n=$(sed -n 's/.*"requests": \([0-9]*\).*/\1/p' "$OUT/cpu-$mode-$round/report.json" | head -1)
            awk -v c="$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" -v n="${n:-0}" 'BEGIN { if (n > 0) printf "%.2f\n", c / n / 1000 }' \
                >"$OUT/cpu-$mode-$round.us"
            stop
            echo "  round $round profiles $mode: $(cat "$OUT/rps-$mode-$round" 2>/dev/null) req/s," \
                "$(cat "$OUT/cpu-$mode-$round.us") us CPU per request at $CPU_RATE req/s" >&2
        done
        if [ -s "$OUT/rps-on-$round" ]; then
            awk -v a="$(cat "$OUT/rps-on-$round")" -v b="$(cat "$OUT/rps-off-$round")" 'BEGIN { print a / b }' >>"$OUT/rps-ratio"
        fi
        awk -v a="$(cat "$OUT/cpu-off-$round.us")" -v b="$(cat "$OUT/cpu-on-$round.us")" 'BEGIN { print a / b }' >>"$OUT/cpu-ratio"
    done
    echo "### contention: fixed /process with both profiles on ($ON_ENV) vs off, $ROUNDS rounds"
    echo
    echo "load average at start: $LOAD0. req/s: wrk -t1 -c32 -d$DURATION; CPU: the server's CPU time per request at $CPU_RATE req/s (loadgen, $DURATION); its ratio is off/on, i.e. the req/s the CPU would allow, on over off."
    echo
    echo "| profiles | median req/s | median ratio per round | ratios | median CPU us/request | median ratio (off/on) | ratios |"
    echo "|---|---:|---:|---|---:|---:|---|"
    list() { awk '{printf "%s%.3f", (NR > 1 ? " " : ""), $1}' "$1" 2>/dev/null; }
    echo "| off | $(cat "$OUT"/rps-off-* 2>/dev/null | median) | 1 | | $(cat "$OUT"/cpu-off-*.us | median) | 1 | |"
    echo "| on | $(cat "$OUT"/rps-on-* 2>/dev/null | median) | $(median <"$OUT/rps-ratio" 2>/dev/null) | $(list "$OUT/rps-ratio") | $(cat "$OUT"/cpu-on-*.us | median) | $(median <"$OUT/cpu-ratio") | $(list "$OUT/cpu-ratio") |"
    echo
fi

# ---- 2b. instructions per request (callgrind) -------------------------------------------------
# fixed under valgrind --tool=callgrind at 200 req/s for 5 s and for 10 s, profiles off and on:
# the difference of the two runs over the difference of their requests is the instructions per
# request, start-up and shutdown cancelled (callgrind runs one thread at a time, so contention
# is not the production one; this is the cost of the paths, not of the waits).
ir_server() { # MODE SECS: "REQUESTS INSTRUCTIONS"
    local mode=$1 secs=$2 envs=(LC_NONE=1)
    [ "$mode" = on ] && envs=(HEAPPROF_MUTEX_FRACTION=5 HEAPPROF_BLOCK_RATE=10000)
    env "${envs[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN/fixed" \
        --listen 127.0.0.1:0 --debug-listen 127.0.0.1:0 --threads 2 >"$OUT/server.out" 2>"$OUT/cg.err" &
    SERVER_PID=$!
    for _ in $(seq 300); do
        [ "$(grep -c '^listening ' "$OUT/server.out")" = 2 ] && break
        sleep 0.1
    done
    URL=$(sed -n 's#^listening /process \(http://.*\)$#\1#p' "$OUT/server.out")
    rm -rf "$OUT/lg-ir"
    "$BIN/loadgen" --url "$URL/process" --rate 200 --duration "${secs}s" --out "$OUT/lg-ir" >/dev/null 2>&1 || true
    stop
    echo "$(sed -n 's/.*"requests": \([0-9]*\).*/\1/p' "$OUT/lg-ir/report.json" | head -1)" \
        "$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$OUT/cg.err")"
}
if part reqir; then
    for round in $(seq "$ROUNDS"); do
        for mode in off on; do
            read -r n1 i1 <<<"$(ir_server $mode 5)"
            read -r n2 i2 <<<"$(ir_server $mode 10)"
            awk -v a="$i1" -v b="$i2" -v m="$n1" -v n="$n2" 'BEGIN { printf "%.0f\n", (b - a) / (n - m) }' \
                >"$OUT/reqir-$mode-$round"
            echo "  round $round profiles $mode: $(cat "$OUT/reqir-$mode-$round") instructions per request" >&2
        done
        awk -v a="$(cat "$OUT/reqir-on-$round")" -v b="$(cat "$OUT/reqir-off-$round")" 'BEGIN { print a / b }' >>"$OUT/reqir-ratio"
    done
    echo "### contention: fixed /process instructions per request (callgrind), both profiles on ($ON_ENV) vs off, $ROUNDS rounds"
    echo
    echo "| profiles | median instructions/request | median ratio per round | ratios |"
    echo "|---|---:|---:|---|"
    echo "| off | $(cat "$OUT"/reqir-off-* | median) | 1 | |"
    echo "| on | $(cat "$OUT"/reqir-on-* | median) | $(median <"$OUT/reqir-ratio") | $(awk '{printf "%s%.4f", (NR > 1 ? " " : ""), $1}' "$OUT/reqir-ratio") |"
    echo
fi

# ---- 3. scan vs batched -----------------------------------------------------------------------
if part sweep; then
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
fi

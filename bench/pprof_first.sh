#!/bin/bash
# pprof_first.sh BIN_DIR LIB_DIR [ROUNDS]: what the FIRST profile of a process costs it, the
# figures of issue 15. For each target a fresh process is started, brought to a steady state,
# and then asked for one profile: the time to its last byte (curl's time_total), the profiler's
# overhead_bytes and the process's RSS from /debug/memstats just before and just after, and the
# time of a second (warm) profile. Medians of ROUNDS fresh processes (default 5).
#   leaky heap   leaky --threads 1 after 200 requests, GET /debug/pprof/heap
#   leaky cpu    leaky --threads 1, GET /debug/pprof/profile?seconds=1 under 1 s of wrk; the
#                time shown is time_total minus the 1 s window (encoding and symbolizing)
#   python3 heap python3 with LD_PRELOAD=libheapprof.so HEAPPROF_HTTP=127.0.0.1:0 after it
#                imported json/decimal/sqlite3 and built a dict of 200k entries
# With PPROF_BASE_BIN and PPROF_BASE_LIB set (another build, e.g. of the commit before), each
# round runs that build too, interleaved, so both sides see the same load of the shared machine.
# Everything listens on 127.0.0.1 port 0 and is stopped by PID.
set -euo pipefail
bin=$1 lib=$2 rounds=${3:-5}
. "$(dirname "$0")/../tests/lib.sh"

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# stat URL NAME: one figure of /debug/memstats.
stat() {
    local v
    v=$(curl -s --max-time 10 "$1/debug/memstats" | tr -d ' ,' | awk -F: -v k="\"$2\"" '$1 == k {print $2}')
    [ -n "$v" ] || lc_fail "no $2 from $1/debug/memstats"
    echo "$v"
}

# probe NAME DEBUG_URL PATH [SUBTRACT_MS] [LOAD_URL]: one first and one warm profile; appends
# "first_ms overhead_before overhead_after rss_growth warm_ms" to $LC_TMP/NAME.
probe() {
    local name=$1 url=$2 path=$3 minus=${4:-0} load=${5:-} wrk_pid="" ob rb oa ra t w
    ob=$(stat "$url" overhead_bytes)
    rb=$(stat "$url" rss_bytes)
    if [ -n "$load" ]; then
        wrk -t1 -c4 -d"$(((minus + 999) / 1000 + 1))s" "$load" >/dev/null 2>&1 &
        wrk_pid=$!
    fi
    t=$(curl -s --max-time 60 -o "$LC_TMP/$name.pb.gz" -w '%{time_total}' "$url$path")
    [ -z "$wrk_pid" ] || wait "$wrk_pid" || true
    oa=$(stat "$url" overhead_bytes)
    ra=$(stat "$url" rss_bytes)
    w=$(curl -s --max-time 60 -o /dev/null -w '%{time_total}' "$url$path")
    [ -s "$LC_TMP/$name.pb.gz" ] || lc_fail "$name: no profile"
    echo "$t $ob $oa $rb $ra $w" | awk -v m="$minus" \
        '{printf "%.1f %d %d %d %.1f\n", $1 * 1000 - m, $2, $3, $5 - $4, $6 * 1000 - m}' \
        >>"$LC_TMP/$name"
}

leaky_heap() { # NAME BIN_DIR
    lc_start_server SRV "$2/leaky" --threads 1
    local i
    for i in $(seq 200); do curl -s -o /dev/null --max-time 5 "$SRV_URL/process"; done
    probe "$1" "$SRV_DEBUG_URL" /debug/pprof/heap
    lc_stop_server SRV
}

leaky_cpu() { # NAME BIN_DIR
    lc_start_server SRV "$2/leaky" --threads 1
    probe "$1" "$SRV_DEBUG_URL" "/debug/pprof/profile?seconds=1" 1000 "$SRV_URL/process"
    lc_stop_server SRV
}

# The interpreter itself, not a launcher: python3 may be a shim (pyenv's is a shell script that
# execs the real one), and the profiler takes HEAPPROF_* out of the environment it passes on.
python=$(python3 -c 'import sys; print(sys.executable)')

python_heap() { # NAME LIB_DIR
    local err="$LC_TMP/py.err" pid url="" i
    LD_PRELOAD="$2/libheapprof.so" HEAPPROF_HTTP=127.0.0.1:0 "$python" -c '
import json, decimal, sqlite3, sys, time
d = {i: str(i) * 3 for i in range(200000)}
print("ready", flush=True)
time.sleep(60)' >"$LC_TMP/py.out" 2>"$err" &
    pid=$!
    LC_PIDS="$LC_PIDS $pid"
    for i in $(seq 300); do # up to 30 s
        grep -q ready "$LC_TMP/py.out" && break
        kill -0 "$pid" 2>/dev/null || lc_fail "python3 under the profiler exited: $(cat "$err")"
        sleep 0.1
    done
    # Take the first listener that answers and says it is this script's process.
    for u in $(sed -n 's#^heapprof[^:]*: listening /debug \(http://.*\)$#\1#p' "$err"); do
        if curl -s --max-time 5 "$u/debug/pprof/cmdline" | tr '\0' ' ' | grep -q "import json"; then
            url=$u
            break
        fi
    done
    [ -n "$url" ] || lc_fail "python3 under the profiler did not start: $(cat "$err")"
    probe "$1" "$url" /debug/pprof/heap
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

sides=(new)
[ -n "${PPROF_BASE_BIN:-}" ] && sides=(base new)
for round in $(seq "$rounds"); do
    for side in "${sides[@]}"; do
        b=$bin l=$lib
        [ "$side" = base ] && b=$PPROF_BASE_BIN l=$PPROF_BASE_LIB
        leaky_heap "leaky-heap-$side" "$b"
        leaky_cpu "leaky-cpu-$side" "$b"
        python_heap "python-heap-$side" "$l"
    done
    echo "  round $round done" >&2
done

mb() { awk -v b="$1" 'BEGIN {printf "%.2f", b / 1e6}'; }
col() { awk -v c="$2" '{print $c}' "$LC_TMP/$1" | median; }
echo "### pprof: the first profile of a fresh process, median of $rounds (bench/pprof_first.sh)"
echo
echo "| process, profile | build | first profile | overhead_bytes before | after | RSS growth | warm profile |"
echo "|---|---|---:|---:|---:|---:|---:|"
for target in leaky-heap leaky-cpu python-heap; do
    for side in "${sides[@]}"; do
        f=$target-$side
        printf '| %s | %s | %s ms | %s MB | %s MB | %s MB | %s ms |\n' "$target" "$side" \
            "$(col "$f" 1)" "$(mb "$(col "$f" 2)")" "$(mb "$(col "$f" 3)")" \
            "$(mb "$(col "$f" 4)")" "$(col "$f" 5)"
    done
done
echo
echo "(cpu: time_total minus the 1 s window. MB = 10^6 bytes.)"
echo

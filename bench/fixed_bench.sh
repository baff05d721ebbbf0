#!/usr/bin/env bash
# The fix's figures, against the real servers on 127.0.0.1 (port 0, killed by PID):
#   1. sweep cost on a fake clock: bench/sweep_cost (10k, 100k, 1M expired; 10k ahead of 1M
#      live; 1M live none expired), shipped batch and a smaller and larger one for comparison;
#   2. p99 of /process at a steady open-loop rate (loadgen --rate) while sweeps run: fixed with
#      TTL 1 s swept every 1 s vs leaky, and vs a control (fixed with no sweep during the run);
#      runs interleaved (order rotating), medians of REPS, ratios within each rep;
#   3. peak in-use of fixed (TTL 2 s, sweep 1 s) vs the bound rate x (TTL + interval) x bytes
#      per entry: entries from the --verbose sweep lines, bytes from the heap profiles.
# Short runs for a shared 2-core machine. Usage: bench/fixed_bench.sh [BIN_DIR]
#   env: RATE (default 5000), SECS (10), REPS (6), CONNS (16), THREADS (server loops, 2)
set -eu
BIN=${1:-build/bin}
RATE=${RATE:-5000}
SECS=${SECS:-10}
REPS=${REPS:-6}
CONNS=${CONNS:-16}
THREADS=${THREADS:-2}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/fixed-bench.XXXXXX")
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$OUT"' EXIT
for prog in fixed leaky loadgen sweep_cost; do
    [ -x "$BIN/$prog" ] || { echo "no $BIN/$prog: build first" >&2; exit 1; }
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
lg_p99() { sed -n 's/.*"p99": \([0-9.]*\).*/\1/p' "$1/report.json"; }
lg_requests() { sed -n 's/^  "requests": \([0-9]*\),$/\1/p' "$1/report.json"; }

start() { # start LABEL PROGRAM ARGS...: sets URL, DEBUG_URL, SERVER_PID; stderr in $OUT/LABEL.err
    local label=$1 name=$2
    shift 2
    "$BIN/$name" --listen 127.0.0.1:0 --debug-listen 127.0.0.1:0 --threads "$THREADS" "$@" \
        >"$OUT/server.out" 2>"$OUT/$label.err" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        [ "$(grep -c '^listening ' "$OUT/server.out")" = 2 ] && break
        sleep 0.1
    done
    URL=$(sed -n 's#^listening /process \(http://.*\)$#\1#p' "$OUT/server.out")
    DEBUG_URL=$(sed -n 's#^listening /debug \(http://.*\)$#\1#p' "$OUT/server.out")
    [ -n "$URL" ] || { echo "$name did not start: $(cat "$OUT/$label.err")" >&2; exit 1; }
}
stop() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
}

echo "## Sweep cost (fake clock, 1 KiB entries, cold cache; median of 3 runs each)"
for prog in sweep_cost sweep_cost_b64 sweep_cost_b1024; do
    [ -x "$BIN/$prog" ] || continue
    "$BIN/$prog" --reps 3
    echo
done

echo "## p99 of /process at $RATE req/s, ${SECS}s runs, $CONNS connections, $THREADS server threads"
echo "fixed: --ttl 1s --sweep-every 1s (a sweep of ~$RATE entries every second); leaky: no sweeps;"
echo "control: fixed --ttl 1h --sweep-every 1h (the fixed binary, no sweep in the run): when it is"
echo "as far from leaky as fixed is, the difference is the machine, not the sweeps."
echo
echo "| run | leaky p99 ms | fixed p99 ms | control p99 ms | fixed / leaky | fixed / control | sweeps | longest lock hold us |"
echo "|---|---|---|---|---|---|---|---|"
: >"$OUT/leaky.p99" && : >"$OUT/fixed.p99" && : >"$OUT/control.p99" && : >"$OUT/ratio" && : >"$OUT/ratio_c"
for r in $(seq "$REPS"); do
    # Rotate which server goes first, so a slow spell of the shared machine does not always
    # land on the same one.
    case $((r % 3)) in
    1) order="leaky fixed control" ;;
    2) order="fixed control leaky" ;;
    0) order="control leaky fixed" ;;
    esac
    for name in $order; do
        case $name in
        fixed) start fixed fixed --ttl 1s --sweep-every 1s --verbose ;;
        control) start control fixed --ttl 1h --sweep-every 1h ;;
        leaky) start leaky leaky ;;
        esac
        "$BIN/loadgen" --url "$URL/process" --rate "$RATE" --duration "${SECS}s" \
            --connections "$CONNS" --out "$OUT/$name.$r" >/dev/null 2>&1
        stop
        lg_p99 "$OUT/$name.$r" >>"$OUT/$name.p99"
    done
    l=$(lg_p99 "$OUT/leaky.$r")
    f=$(lg_p99 "$OUT/fixed.$r")
    c=$(lg_p99 "$OUT/control.$r")
    awk -v f="$f" -v l="$l" 'BEGIN { printf "%.2f\n", f / l }' >>"$OUT/ratio"
    awk -v f="$f" -v c="$c" 'BEGIN { printf "%.2f\n", f / c }' >>"$OUT/ratio_c"
    sweeps=$(grep -c ': sweep expired ' "$OUT/fixed.err" || true)
    hold=$(sed -n 's/.*longest lock hold \([0-9]*\) us.*/\1/p' "$OUT/fixed.err" | sort -n | tail -1)
    echo "| $r | $l | $f | $c | $(tail -1 "$OUT/ratio") | $(tail -1 "$OUT/ratio_c") | $sweeps | $hold |"
done
echo "| median | $(median <"$OUT/leaky.p99") | $(median <"$OUT/fixed.p99") | $(median <"$OUT/control.p99") | $(median <"$OUT/ratio") | $(median <"$OUT/ratio_c") | | |"
echo

PEAK_RATE=${PEAK_RATE:-2000}
echo "## Peak in-use of fixed at $PEAK_RATE req/s, TTL 2 s, sweep every 1 s, ${SECS}s"
# A finer sampling rate than the default 512 KiB: at ~7 MiB in use that would be ~14 samples
# (+-27%); at 16 KiB it is ~450 (+-5%).
HEAPPROF_RATE=16384 start peak fixed --ttl 2s --sweep-every 1s --verbose
"$BIN/loadgen" --url "$URL/process" --rate "$PEAK_RATE" --duration "${SECS}s" --connections "$CONNS" \
    --profile-url "$DEBUG_URL/debug/pprof/heap" --profile-every 700ms --out "$OUT/peak" >/dev/null 2>&1
stop
# Entries just before sweep i = what it left + what it expired (puts during the sweep itself
# aside). Bytes per entry: the store's own bytes / entries.
awk -v rate="$PEAK_RATE" '
    / sweep expired / {
        match($0, /expired [0-9]+/); e = substr($0, RSTART + 8, RLENGTH - 8) + 0
        match($0, /held [0-9]+ entries \([0-9]+ bytes/); s = substr($0, RSTART, RLENGTH)
        split(s, f, /[ (]+/); h = f[2] + 0; b = f[4] + 0
        if (h + e > peak) peak = h + e
        if (h > 0) per = b / h
    }
    END {
        bound = rate * 3
        printf "entries: peak %d before a sweep, bound rate x (TTL + interval) = %d (%.2f of it)\n", peak, bound, peak / bound
        printf "bytes per entry (store header + metadata): %.0f; bound in bytes %.1f MiB\n", per, bound * per / 1048576
        print bound * per > "/dev/stderr"
    }' "$OUT/peak.err" 2>"$OUT/bound_bytes"
bound_bytes=$(cat "$OUT/bound_bytes")
awk -F, -v bound="$bound_bytes" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == "inuse_bytes") c = i; next }
    $c != "" && $c + 0 > peak { peak = $c + 0 }
    END { printf "heap profile inuse_space: peak %.1f MiB (%.2f of the bound; sampled every 700 ms, whole process)\n", peak / 1048576, peak / bound }
' "$OUT/peak/timeline.csv"

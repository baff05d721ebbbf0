#!/usr/bin/env bash
# loadgen's figures against the bare evhttp server (bench/bare_server, one event loop):
#   1. --rate max vs wrk: same server, same connections, runs interleaved, medians of REPS;
#   2. rate accuracy: achieved vs asked at 1k, 10k, 30k req/s;
#   3. a server stalled (SIGSTOP by PID) for 1 s mid-run: p99 as loadgen (from due time) and wrk
#      (from send time) report it.
# Short runs (SECS each) for a shared 2-core machine. Usage: bench/loadgen_bench.sh [BIN_DIR]
set -eu
BIN=${1:-build/bin}
SECS=${SECS:-3}
REPS=${REPS:-3}
CONNS=${CONNS:-16}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/loadgen-bench.XXXXXX")
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$OUT"' EXIT
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

"$BIN/bare_server" --listen 127.0.0.1:0 --debug-listen 127.0.0.1:0 --threads 1 >"$OUT/server" &
SERVER_PID=$!
for _ in $(seq 50); do grep -q '^listening /process' "$OUT/server" && break; sleep 0.1; done
URL=$(sed -n 's#^listening /process \(http://.*\)$#\1#p' "$OUT/server")/process

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
lg_rps() { sed -n 's/^  "throughput_rps": \([0-9.]*\),$/\1/p' "$1/report.json"; }
lg_p99() { sed -n 's/.*"p99": \([0-9.]*\).*/\1/p' "$1/report.json"; }

echo "## --rate max vs wrk ($CONNS connections, ${SECS}s runs, median of $REPS, bare_server 1 thread)"
# Throughput on a shared machine swings with other work; CPU time per request (user + sys of
# the client, from /usr/bin/time) is the steadier measure of the client's own cost.
echo "| threads | wrk req/s | loadgen req/s | loadgen / wrk | wrk CPU us/req | loadgen CPU us/req |"
echo "|---|---|---|---|---|---|"
cpu_us() { awk -v n="$2" '{ printf "%.2f\n", ($1 + $2) * 1e6 / n }' "$1"; }
for t in 1 2; do
    : >"$OUT/wrk" && : >"$OUT/lg" && : >"$OUT/ratio" && : >"$OUT/wcpu" && : >"$OUT/lcpu"
    for r in $(seq "$REPS"); do
        /usr/bin/time -f "%U %S" -o "$OUT/wtime" wrk -t$t -c"$CONNS" -d"${SECS}s" "$URL" >"$OUT/wout"
        w=$(sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$OUT/wout")
        wn=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$OUT/wout")
        /usr/bin/time -f "%U %S" -o "$OUT/ltime" "$BIN/loadgen" --url "$URL" --rate max \
            --duration "${SECS}s" --connections "$CONNS" --threads $t --out "$OUT/max$t.$r" >/dev/null
        l=$(lg_rps "$OUT/max$t.$r")
        ln=$(sed -n 's/^  "requests": \([0-9]*\),$/\1/p' "$OUT/max$t.$r/report.json")
        echo "$w" >>"$OUT/wrk"
        echo "$l" >>"$OUT/lg"
        awk -v l="$l" -v w="$w" 'BEGIN { printf "%.3f\n", l / w }' >>"$OUT/ratio"
        cpu_us "$OUT/wtime" "$wn" >>"$OUT/wcpu"
        cpu_us "$OUT/ltime" "$ln" >>"$OUT/lcpu"
    done
    echo "| $t | $(median <"$OUT/wrk") | $(median <"$OUT/lg") | $(median <"$OUT/ratio") (runs: $(tr '\n' ' ' <"$OUT/ratio")) | $(median <"$OUT/wcpu") | $(median <"$OUT/lcpu") |"
done

echo
echo "## rate accuracy (${SECS}s runs, $CONNS connections, 1 thread)"
echo "| asked req/s | achieved req/s | achieved/asked | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|"
for rate in 1000 10000 30000; do
    "$BIN/loadgen" --url "$URL" --rate $rate --duration "${SECS}s" --connections "$CONNS" \
        --out "$OUT/rate$rate" >/dev/null
    a=$(lg_rps "$OUT/rate$rate")
    p50=$(sed -n 's/.*"p50": \([0-9.]*\).*/\1/p' "$OUT/rate$rate/report.json")
    e=$(sed -n 's/^  "errors": \([0-9]*\),$/\1/p' "$OUT/rate$rate/report.json")
    echo "| $rate | $a | $(awk -v a="$a" -v r=$rate 'BEGIN { printf "%.4f", a / r }') | $p50 | $(lg_p99 "$OUT/rate$rate") | $e |"
done

echo
echo "## a 1 s stall (SIGSTOP at 1.5 s of a 5 s run at 1000 req/s)"
stall() { sleep 1.5; kill -STOP "$SERVER_PID"; sleep 1; kill -CONT "$SERVER_PID"; }
"$BIN/loadgen" --url "$URL" --rate 1000 --duration 5s --connections "$CONNS" --out "$OUT/stall" >/dev/null &
lg=$!
stall
wait $lg
wrk -t1 -c"$CONNS" -d5s --latency "$URL" >"$OUT/wrk.stall" &
wk=$!
stall
wait $wk
wrk_p99=$(sed -n 's/^ *99% *\([0-9.]*[a-z]*\)$/\1/p' "$OUT/wrk.stall")
echo "| tool | p99 | requests |"
echo "|---|---|---|"
echo "| loadgen --rate 1000 (latency from due time) | $(lg_p99 "$OUT/stall") ms | $(sed -n 's/^  "requests": \([0-9]*\),$/\1/p' "$OUT/stall/report.json") |"
echo "| wrk (closed loop, latency from send) | $wrk_p99 | $(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$OUT/wrk.stall") |"

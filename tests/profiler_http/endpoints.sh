#!/usr/bin/env bash
# Every endpoint of the debug surface on a live leaky, without Go:
#  - the index lists every profile with its count and link, and the memstats/metrics links;
#  - cmdline is the server's argv joined by NUL bytes (no trailing NUL);
#  - symbol: GET says num_symbols: 1; POST and GET-with-query name known addresses (store_put,
#    taken from the text profile), and leave unknown ones out;
#  - every error path: 400 for bad seconds (abc, -1, 0, 301, 1.5, empty-with-sign), seconds with
#    debug, seconds on threads; 404 for unknown profiles; all text/plain with X-Go-Pprof: 1;
#  - a delta profile waits on a timer: /process answers meanwhile; a client that goes away
#    frees its slot (8 deltas at most, the 9th gets 503 at once, then none after they leave);
#  - threads?debug=2 lists every thread of the process by name; debug=1 is Go's count format,
#    one record per (stack, thread name).
# usage: endpoints.sh LEAKY LOADGEN ALLOC_LOOP LIBHEAPPROF
set -u
. "$(dirname "$0")/http_lib.sh"

HEAPPROF_RATE=4096 lc_start_server S "$PH_LEAKY" --threads 2 --entry-bytes 1024
D="$S_DEBUG_URL/debug/pprof"
ph_load "$S_URL/process" 300

# --- index ---------------------------------------------------------------------------------
[ "$(ph_get "$D/")" = 200 ] || lc_fail "index: $(cat "$LC_TMP/body")"
grep -qi '^Content-Type: text/html' "$LC_TMP/headers" || lc_fail "index is not text/html"
for p in allocs cmdline heap profile symbol threads; do
    grep -Eq "<tr><td>[0-9]+</td><td><a href='$p\?debug=1'>$p</a></td></tr>" "$LC_TMP/body" ||
        lc_fail "index has no row for $p: $(cat "$LC_TMP/body")"
done
threads=$(ls /proc/"$S_PID"/task | wc -l)
grep -q "<tr><td>$threads</td><td><a href='threads?debug=1'>" "$LC_TMP/body" ||
    lc_fail "index: threads count is not $threads"
grep -Eq "<tr><td>[1-9][0-9]*</td><td><a href='heap\?debug=1'>" "$LC_TMP/body" ||
    lc_fail "index: heap has no records after 300 requests"
for link in 'href="/debug/memstats"' 'href="/metrics"' 'href="threads?debug=2"'; do
    grep -qF "$link" "$LC_TMP/body" || lc_fail "index lacks $link"
done
[ "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 5 "$S_DEBUG_URL/debug/pprof")" = \
  "301 $S_DEBUG_URL/debug/pprof/" ] || lc_fail "/debug/pprof does not redirect to the index"

# --- cmdline -------------------------------------------------------------------------------
[ "$(ph_get "$D/cmdline")" = 200 ] || lc_fail "cmdline"
printf '%s\0' "$PH_LEAKY" --listen 127.0.0.1:0 --debug-listen 127.0.0.1:0 --threads 2 \
    --entry-bytes 1024 | head -c -1 >"$LC_TMP/want_cmdline"
cmp -s "$LC_TMP/body" "$LC_TMP/want_cmdline" ||
    lc_fail "cmdline is not argv joined by NUL: $(od -c "$LC_TMP/body" | head -5)"

# --- symbol --------------------------------------------------------------------------------
[ "$(ph_get "$D/symbol")" = 200 ] || lc_fail "symbol GET"
[ "$(cat "$LC_TMP/body")" = "num_symbols: 1" ] || lc_fail "symbol GET: $(cat "$LC_TMP/body")"
[ "$(ph_get "$D/heap?debug=1")" = 200 ] || lc_fail "heap?debug=1"
addr=$(sed -n 's/^#\t\(0x[0-9a-f]*\)\tstore_put+.*/\1/p' "$LC_TMP/body" | head -1)
addr2=$(sed -n 's/^#\t\(0x[0-9a-f]*\)\thandle_process+.*/\1/p' "$LC_TMP/body" | head -1)
[ -n "$addr" ] && [ -n "$addr2" ] || lc_fail "no store_put / handle_process in the text profile"
[ "$(ph_get "$D/symbol" --data-binary "$addr+0x1+$addr2+junk+$((addr))")" = 200 ] ||
    lc_fail "symbol POST"
printf 'num_symbols: 1\n%s store_put\n%s handle_process\n%s store_put\n' "$addr" "$addr2" \
    "$addr" >"$LC_TMP/want_symbols"
cmp -s "$LC_TMP/body" "$LC_TMP/want_symbols" ||
    lc_fail "symbol POST answered: $(cat "$LC_TMP/body")"
[ "$(ph_get "$D/symbol?$addr2")" = 200 ] || lc_fail "symbol GET with query"
[ "$(sed -n 2p "$LC_TMP/body")" = "$addr2 handle_process" ] ||
    lc_fail "symbol GET with query: $(cat "$LC_TMP/body")"

# --- errors --------------------------------------------------------------------------------
for bad in abc -1 0 1.5 '%2D5' 99999999999999999999; do
    ph_expect_error "$D/heap?seconds=$bad" 400 'invalid value for "seconds"'
done
ph_expect_error "$D/allocs?seconds=301" 400 'exceeds'
ph_expect_error "$D/heap?seconds=2&debug=1" 400 'seconds and debug params are incompatible'
ph_expect_error "$D/threads?seconds=2" 400 '"seconds" parameter is not supported'
ph_expect_error "$D/threads?seconds=x" 400 'invalid value for "seconds"'
ph_expect_error "$D/nosuch" 404 'Unknown profile'
ph_expect_error "$D/goroutine" 404 'threads'
ph_expect_error "$D/heap/extra" 404 'Unknown profile'
[ "$(ph_get "$S_DEBUG_URL/elsewhere")" = 404 ] || lc_fail "an unknown path is not 404"

# --- delta: a timer, not a stall; bounded; clients that leave are forgotten ----------------
# A stalled loop would hold every request until the delta's window ends, so a request answered
# while the delta is still pending proves the loops run. How long one takes depends on how busy
# the machine is, so the requests are not timed: each pair (/process, then a debug page) must
# succeed, and the delta must still be pending when at least one pair has been answered.
rm -f "$LC_TMP/delta.status"
curl -s -o "$LC_TMP/delta.pb.gz" -w '%{http_code} %{time_total}' --max-time 40 \
    "$D/heap?seconds=4" >"$LC_TMP/delta.status" &
delta=$!
sleep 0.2
during=0
for i in $(seq 8); do
    [ -s "$LC_TMP/delta.status" ] && break # curl writes it when the delta is over
    t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 15 "$S_URL/process") ||
        lc_fail "/process request $i during a delta failed"
    [ "${t% *}" = 200 ] || lc_fail "/process answered ${t% *} during a delta"
    [ "$(ph_get "$D/heap?debug=1" --max-time 15)" = 200 ] || lc_fail "the debug loop failed during a delta"
    [ -s "$LC_TMP/delta.status" ] || during=$((during + 1))
    sleep 0.1
done
wait "$delta" || lc_fail "the delta request failed"
[ "$during" -ge 1 ] || lc_fail "no request was answered while the 4 s delta was pending: a loop stalled"
read -r code secs <"$LC_TMP/delta.status"
[ "$code" = 200 ] || lc_fail "heap?seconds=4 answered $code"
awk -v t="$secs" 'BEGIN { exit !(t >= 3.9) }' || lc_fail "heap?seconds=4 took $secs s"
[ "$(head -c 2 "$LC_TMP/delta.pb.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ] ||
    lc_fail "the delta is not gzip'd"

pids=""
for i in $(seq 8); do
    curl -s -o /dev/null --max-time 30 "$D/allocs?seconds=30" &
    pids="$pids $!"
done
sleep 0.5
ph_expect_error "$D/heap?seconds=1" 503 'too many delta profiles'
kill $pids 2>/dev/null
wait $pids 2>/dev/null
sleep 0.5 # the server sees the clients leave (EOF on their sockets)
[ "$(ph_get "$D/heap?seconds=1")" = 200 ] ||
    lc_fail "deltas whose clients left still hold their slots: $(cat "$LC_TMP/body")"

# --- threads -------------------------------------------------------------------------------
[ "$(ph_get "$D/threads?debug=2")" = 200 ] || lc_fail "threads?debug=2"
for task in /proc/"$S_PID"/task/*; do
    name=$(cat "$task/comm")
    grep -qF "thread ${task##*/} \"$name\" [" "$LC_TMP/body" ||
        lc_fail "threads?debug=2 lacks thread ${task##*/} ($name): $(cat "$LC_TMP/body")"
done
grep -q '^worker_main(...)$' "$LC_TMP/body" || lc_fail "threads?debug=2 never names worker_main"
[ "$(ph_get "$D/threads?debug=1")" = 200 ] || lc_fail "threads?debug=1"
ph_expect "$LC_TMP/body" "^threads profile: total $threads\$" '^1 @( 0x[0-9a-f]+)+$' \
    '^# labels: \{"thread":"svc-worker-0"\}$' '^# labels: \{"thread":"svc-worker-1"\}$' $'^#\t0x[0-9a-f]+\tworker_main\+0x[0-9a-f]+\t.*svc\\.c:[0-9]+$' \
    '^--- Memory map: ---$'
[ "$(ph_get "$D/threads")" = 200 ] || lc_fail "threads (pprof)"
grep -qi '^Content-Disposition: attachment; filename="threads"' "$LC_TMP/headers" ||
    lc_fail "threads: no Content-Disposition"

lc_stop_server S
[ "$S_STATUS" = 0 ] || lc_fail "leaky exited $S_STATUS: $(cat "$S_ERR")"
echo "ok: index, cmdline, symbol, errors, delta timer and limit, threads"

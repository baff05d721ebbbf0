#!/usr/bin/env bash
# go tool pprof reads what the debug surface serves, from a live leaky:
#  - heap?debug=1 and allocs?debug=1 (the legacy text): four sample types, store_put on top,
#    and pprof's own unbiasing of the raw counts gives the binary profile's in-use total back
#    (within 1%: pprof truncates each record to an integer);
#  - heap?seconds=3 around a 1 s load: store_put on top, Duration 3s, and the delta's in-use
#    growth matches what the store grew by (within 25%: 1500 entries of 1104 B at a 4 KiB rate
#    are ~400 samples, a 5% standard error; 25% is 5 of them); allocs?seconds=1 too;
#  - threads (pprof) and threads?debug=1 (text): threads/count, one sample per thread name,
#    worker_main in the workers' stacks.
# usage: pprof_tool.sh LEAKY LOADGEN ALLOC_LOOP LIBHEAPPROF   (exit 77: no Go toolchain)
set -u
. "$(dirname "$0")/http_lib.sh"
ph_need_go

HEAPPROF_RATE=4096 lc_start_server S "$PH_LEAKY" --threads 2
D="$S_DEBUG_URL/debug/pprof"
ph_load "$S_URL/process" 1000

# total_of FILE: the total of "Showing nodes accounting for X, P% of TOTAL total" in bytes.
total_of() {
    sed -n 's/^Showing nodes accounting for .* of \([0-9.]*\)B total$/\1/p' "$1"
}

# --- text profiles --------------------------------------------------------------------------
ph_pprof -raw "$D/heap?debug=1" >"$LC_TMP/raw_text"
ph_expect "$LC_TMP/raw_text" '^PeriodType: space bytes' '^Period: 4096$' \
    'alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes' \
    'bytes:\[1104\]'
ph_pprof -top -unit=B -nodecount=100000 "$D/heap?debug=1" >"$LC_TMP/top_text"
ph_expect "$LC_TMP/top_text" '^Type: inuse_space' '^ +[0-9]+B +[0-9.]+% +[0-9.]+% .* store_put$'
ph_pprof -top -unit=B -nodecount=100000 "$D/heap" >"$LC_TMP/top_bin"
text_total=$(total_of "$LC_TMP/top_text")
bin_total=$(total_of "$LC_TMP/top_bin")
[ -n "$text_total" ] && [ -n "$bin_total" ] || lc_fail "no totals: $(head -5 "$LC_TMP/top_text")"
awk -v a="$text_total" -v b="$bin_total" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 0.01 * b) }' ||
    lc_fail "the text profile's in-use total $text_total B is not the binary's $bin_total B"
ph_pprof -top -sample_index=alloc_space "$D/allocs?debug=1" >"$LC_TMP/top_allocs_text"
ph_expect "$LC_TMP/top_allocs_text" '^Type: alloc_space' ' store_put$'

# --- deltas under load ---------------------------------------------------------------------
# The load runs wholly inside the delta's window, so the delta's in-use growth is the store's.
# The window opens when the server reads the request: the request is written first (bash's
# /dev/tcp: when the write returns, it is sent), and the load starts 0.2 s later. How long a
# 1 s load and two memstats reads take depends on how busy the machine is, so the window is
# not fixed: if the load ended later than 0.8 of the window after the request, or served too
# little, the attempt is not judged and the next one doubles the window and the load (3 s
# around a 1 s load, 6 around 2, 12 around 4, 24 around 8).
store_bytes() {
    curl -s --max-time 30 "$S_DEBUG_URL/debug/memstats" |
        sed -n 's/.*"store_bytes": *\([0-9][0-9]*\).*/\1/p'
}
delta_attempt() { # SECONDS
    local seconds=$1 hostport=${S_DEBUG_URL#http://} t0 took_ms
    exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || lc_fail "cannot connect to $hostport"
    printf 'GET /debug/pprof/heap?seconds=%s HTTP/1.0\r\nHost: %s\r\n\r\n' "$seconds" "$hostport" >&3
    t0=$(date +%s%N)
    timeout $((seconds + 60)) cat <&3 >"$LC_TMP/delta.http" &
    local fetch=$!
    exec 3<&-
    sleep 0.2
    before=$(store_bytes)
    "$PH_LOADGEN" --url "$S_URL/process" --rate 1500 --duration "$((seconds / 3))s" --connections 2 \
        >/dev/null 2>&1 || lc_fail "loadgen failed during the delta"
    after=$(store_bytes)
    took_ms=$((($(date +%s%N) - t0) / 1000000))
    wait "$fetch" || lc_fail "the delta profile failed"
    head -n 1 "$LC_TMP/delta.http" | grep -q '^HTTP/1\.[01] 200' ||
        lc_fail "heap?seconds=$seconds: $(head -c 300 "$LC_TMP/delta.http")"
    # The body starts after the first empty line (CRLF CRLF) of the reply.
    local header_bytes
    header_bytes=$(LC_ALL=C awk 'BEGIN { RS = "\r\n\r\n" } { print length($0) + 4; exit }' \
        "$LC_TMP/delta.http")
    tail -c +$((header_bytes + 1)) "$LC_TMP/delta.http" >"$LC_TMP/delta.pb.gz"
    [ "$took_ms" -lt $((seconds * 800)) ] || {
        echo "the load ended $took_ms ms after a ${seconds} s delta request: not judged, again"
        return 1
    }
    # The 25% bound below needs >= 1 MiB of growth (256 samples at HEAPPROF_RATE=4096: a
    # relative standard error of 1/16, four of them inside 25%); a busy machine serves fewer
    # requests in the load's time, so that attempt is not judged either (the next load is longer).
    [ $((after - before)) -gt 1048576 ] || {
        echo "the store grew only $((after - before)) B during a ${seconds} s delta: not judged, again"
        return 1
    }
}
delta_seconds=3
while ! delta_attempt $delta_seconds; do
    delta_seconds=$((delta_seconds * 2))
    [ $delta_seconds -le 24 ] || lc_fail "the load never fit in a delta window of up to 24 s"
done
ph_pprof -top -unit=B -nodecount=100000 "$LC_TMP/delta.pb.gz" >"$LC_TMP/top_delta"
ph_expect "$LC_TMP/top_delta" '^Type: inuse_space' "^Duration: ${delta_seconds}(\.[0-9]+)?s," ' store_put$'
delta_total=$(total_of "$LC_TMP/top_delta")
grew=$((after - before))
awk -v d="$delta_total" -v g="$grew" 'BEGIN { exit !(g > 1048576 && d > 0.75 * g && d < 1.25 * g) }' ||
    lc_fail "the delta's in-use growth $delta_total B does not match the store's $grew B"
echo "delta in-use growth $delta_total B; the store grew $grew B"
# A 1 s window lasts at least 1 s, and no longer than the client waited (a busy machine can
# fire the server's timer late: the bound is measured, not assumed).
t0=$(date +%s%N)
ph_pprof -top -sample_index=alloc_space "$D/allocs?seconds=1" >"$LC_TMP/top_delta_allocs"
waited_ms=$((($(date +%s%N) - t0) / 1000000))
ph_expect "$LC_TMP/top_delta_allocs" '^Type: alloc_space' '^Duration: '
sed -n 's/^Duration: \([0-9.]*\)\(m\{0,1\}s\),.*/\1 \2/p' "$LC_TMP/top_delta_allocs" |
    awk -v w="$waited_ms" '{ d = ($2 == "ms") ? $1 / 1000 : $1 } END { exit !(NR == 1 && d >= 1 && d * 1000 <= w) }' ||
    lc_fail "allocs?seconds=1 lasted $(grep '^Duration' "$LC_TMP/top_delta_allocs"); the client waited $waited_ms ms"

# --- threads -------------------------------------------------------------------------------
ph_pprof -traces "$D/threads" >"$LC_TMP/traces"
ph_expect "$LC_TMP/traces" '^Type: threads$' 'thread: +svc-worker-0' 'thread: +svc-worker-1' \
    'thread: +leaky' ' worker_main$' ' hprof_threads_capture$'
ph_pprof -raw "$D/threads?debug=1" >"$LC_TMP/raw_threads"
ph_expect "$LC_TMP/raw_threads" '^PeriodType: threads count' '^threads/count' 'worker_main'

lc_stop_server S
[ "$S_STATUS" = 0 ] || lc_fail "leaky exited $S_STATUS"
echo "ok: go tool pprof reads the text, delta and threads profiles"

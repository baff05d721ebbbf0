#!/usr/bin/env bash
# The contention profiles of a live fixed server, read by go tool pprof:
#  - fixed --sweep-mode scan with HEAPPROF_MUTEX_FRACTION=1 HEAPPROF_BLOCK_RATE=1000 under load:
#    /debug/pprof/mutex and /block are pprof profiles (contentions/count, delay/nanoseconds,
#    period_type contentions/count, period 1) that pprof reads, and their ?debug=1 texts too;
#    the mutex profile blames the holders of the store's lock (store_put, sweep_scan), the
#    block profile the waiters (store_put) and the janitor's idle wait (janitor_main);
#  - the index lists block, mutex and threadcreate; threadcreate names the stacks that created
#    the server's live threads (svc_main's event loops, janitor_start), in pprof and as text,
#    one count per thread but main;
#  - a second fixed with both profiles off: mutex?seconds=2 under load switches the profile on
#    for the window (a non-empty delta named mutex-delta, Duration 2s), and off again after it;
#    a client that leaves a ?seconds=30 request closes its window and frees its slot at once;
#  - bad parameters: seconds with debug, seconds=0: 400 as Go answers.
# usage: contention.sh FIXED LOADGEN   (exit 77: no Go toolchain)
set -u
. "$(dirname "$0")/../lib.sh"
FIXED=$1
LOADGEN=$2
command -v curl >/dev/null || lc_fail "curl is not installed"
command -v go >/dev/null 2>&1 || lc_skip "go (Debian golang-go) is not installed"
export HOME="$LC_TMP/home" GOCACHE="$LC_TMP/gocache" GOPATH="$LC_TMP/gopath"
export PPROF_TMPDIR="$LC_TMP/pprof" PPROF_BINARY_PATH="$LC_TMP/no-binaries" GOTOOLCHAIN=local
mkdir -p "$HOME" "$PPROF_TMPDIR" "$PPROF_BINARY_PATH"

pprof() {
    (cd "$LC_TMP" && timeout 120 go tool pprof "$@") 2>"$LC_TMP/pprof.err" ||
        lc_fail "go tool pprof $*: $(cat "$LC_TMP/pprof.err")"
}
expect() { # FILE PATTERN...
    local file=$1 p
    shift
    for p in "$@"; do
        grep -Eq -- "$p" "$file" || lc_fail "no line matches '$p' in $file:
$(head -40 "$file")"
    done
}
status_of() { # URL
    curl -s -o "$LC_TMP/body" -w '%{http_code}' --max-time 30 "$1"
}

# --- profiles on from the start -------------------------------------------------------------
# TTL 5 s and a scan every 50 ms, as for the window below: contention on the store's lock is
# certain (13 contentions in 3 s at TTL 1 s and sweeps every 300 ms: likely, not certain).
HEAPPROF_MUTEX_FRACTION=1 HEAPPROF_BLOCK_RATE=1000 lc_start_server S "$FIXED" --threads 2 \
    --sweep-mode scan --ttl 5s --sweep-every 50ms
D="$S_DEBUG_URL/debug/pprof"
"$LOADGEN" --url "$S_URL/process" --rate 3000 --duration 3s >"$LC_TMP/load1" 2>&1 ||
    lc_fail "loadgen: $(tail -3 "$LC_TMP/load1")"

pprof -raw "$D/mutex" >"$LC_TMP/mutex_raw"
expect "$LC_TMP/mutex_raw" '^PeriodType: contentions count' '^Period: 1$' \
    'contentions/count delay/nanoseconds' 'mutex profile fraction 1/1'
pprof -top -nodecount=1000 "$D/mutex" >"$LC_TMP/mutex_top"
expect "$LC_TMP/mutex_top" '^Type: delay' ' (store_put|sweep_scan)$'
pprof -top -nodecount=1000 "$D/block" >"$LC_TMP/block_top"
expect "$LC_TMP/block_top" '^Type: delay' ' janitor_main$'
pprof -top -nodecount=1000 -sample_index=contentions "$D/block" >"$LC_TMP/block_count"
expect "$LC_TMP/block_count" '^Type: contentions'

[ "$(status_of "$D/mutex?debug=1")" = 200 ] || lc_fail "mutex?debug=1: $(cat "$LC_TMP/body")"
expect "$LC_TMP/body" '^--- mutex:$' '^cycles/second=1000000000$' '^sampling period=1$' \
    '^[0-9]+ [0-9]+ @( 0x[0-9a-f]+)+$' '^#	0x[0-9a-f]+	(store_put|sweep_scan)'
[ "$(status_of "$D/block?debug=1")" = 200 ] || lc_fail "block?debug=1: $(cat "$LC_TMP/body")"
expect "$LC_TMP/body" '^--- contention:$' '^#	0x[0-9a-f]+	janitor_main'
pprof -top "$D/block?debug=1" >"$LC_TMP/block_text_top" # pprof reads the text form too
expect "$LC_TMP/block_text_top" '^Type: delay'

[ "$(status_of "$D/")" = 200 ] || lc_fail "index"
expect "$LC_TMP/body" "href='block\?debug=1'" "href='mutex\?debug=1'" \
    "href='threadcreate\?debug=1'"
pprof -top -nodecount=1000 "$D/threadcreate" >"$LC_TMP/tc_top"
expect "$LC_TMP/tc_top" '^Type: threadcreate' ' janitor_start$'
[ "$(status_of "$D/threadcreate?debug=1")" = 200 ] || lc_fail "threadcreate?debug=1"
expect "$LC_TMP/body" '^threadcreate profile: total [1-9][0-9]*$' '^#	0x[0-9a-f]+	janitor_start'
# The live threads, each once: all the server's threads but main (2 event loops, the janitor).
tc_total=$(sed -n 's/^threadcreate profile: total //p' "$LC_TMP/body")
tasks=$(ls "/proc/$S_PID/task" | wc -l)
[ "$tc_total" = $((tasks - 1)) ] || lc_fail "threadcreate total $tc_total, $tasks threads"
[ "$(status_of "$D/threadcreate?seconds=1")" = 400 ] || lc_fail "threadcreate?seconds accepted"
[ "$(status_of "$D/mutex?seconds=1&debug=1")" = 400 ] || lc_fail "seconds with debug accepted"
[ "$(status_of "$D/block?seconds=0")" = 400 ] || lc_fail "seconds=0 accepted"
lc_stop_server S
[ "$S_STATUS" = 0 ] || lc_fail "fixed exited $S_STATUS: $(tail -5 "$S_ERR")"

# --- profiles off; a ?seconds=N window switches the mutex profile on ------------------------
# Contention in the window must be certain, not likely: with --ttl 1s --sweep-every 300ms a
# quiet-enough machine saw none in the 2 s window in 1 run of 8 (about 2 contentions per
# window). With TTL 5 s the table grows to the whole load, and a scan every 50 ms holds the lock
# long and often enough: 30 contentions in a measured window.
lc_start_server T "$FIXED" --threads 2 --sweep-mode scan --ttl 5s --sweep-every 50ms
D="$T_DEBUG_URL/debug/pprof"
[ "$(status_of "$D/mutex?debug=1")" = 200 ] || lc_fail "mutex?debug=1"
expect "$LC_TMP/body" '^sampling period=0$'
# The load runs before, through and after the window, so every moment of it is under load (a
# window that began with the load's start could miss the contention on a busy machine).
"$LOADGEN" --url "$T_URL/process" --rate 3000 --duration 5s >"$LC_TMP/load2" 2>&1 &
load=$!
sleep 1
curl -s -D "$LC_TMP/delta_headers" -o "$LC_TMP/delta.pb.gz" --max-time 60 "$D/mutex?seconds=2" ||
    lc_fail "mutex?seconds=2 failed"
wait "$load" || lc_fail "loadgen: $(tail -3 "$LC_TMP/load2")"
expect "$LC_TMP/delta_headers" 'filename="mutex-delta"'
pprof -top -nodecount=1000 "$LC_TMP/delta.pb.gz" >"$LC_TMP/delta_top"
expect "$LC_TMP/delta_top" '^Duration: 2(\.[0-9]+)?s' ' (store_put|sweep_scan)$'
[ "$(status_of "$D/mutex?debug=1")" = 200 ] || lc_fail "mutex?debug=1"
expect "$LC_TMP/body" '^sampling period=0$' # the window closed

# A client that leaves closes its window and frees its slot as soon as the server sees EOF on
# its socket, not after its 30 s. Each check polls for up to 10 s (a busy machine may take a
# moment to run the debug loop, or to start nine curls), well short of those 30 s.
poll() { # SECONDS COMMAND...: true once COMMAND succeeds, false if SECONDS pass first
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
window_closed() { [ "$(status_of "$D/mutex?debug=1")" = 200 ] && grep -q '^sampling period=0$' "$LC_TMP/body"; }
ninth_served() { [ "$(status_of "$D/block?seconds=1")" = 200 ]; }
curl -s -o /dev/null --max-time 1 "$D/block?seconds=30" && lc_fail "a 30 s delta came back in 1 s"
poll 10 window_closed || lc_fail "the window of a client that left is still open after 10 s"
# Nine at once: whatever the order they arrive in, eight wait and one is refused at once.
: >"$LC_TMP/nine"
pids=""
for _ in $(seq 9); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 "$D/mutex?seconds=30" >>"$LC_TMP/nine" &
    pids="$pids $!"
done
one_answered() { [ -s "$LC_TMP/nine" ]; }
poll 10 one_answered || lc_fail "nine deltas at once: none refused after 10 s"
sleep 0.5
[ "$(cat "$LC_TMP/nine")" = 503 ] || lc_fail "nine deltas at once, answered early: $(cat "$LC_TMP/nine")"
kill $pids 2>/dev/null
wait $pids 2>/dev/null
poll 10 ninth_served || lc_fail "deltas whose clients left still hold their slots after 10 s"
poll 10 window_closed || lc_fail "the windows of clients that left are still open after 10 s"
lc_stop_server T
[ "$T_STATUS" = 0 ] || lc_fail "fixed exited $T_STATUS: $(tail -5 "$T_ERR")"
echo "contention: mutex and block profiles read by pprof; the window switched mutex on and off"

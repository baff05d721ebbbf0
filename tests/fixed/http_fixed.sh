#!/usr/bin/env bash
# Integration test of the fix, against the real servers on 127.0.0.1 port 0 (tests/lib.sh kills
# them by PID whatever happens; every wait is bounded; about a minute):
#  1. fixed refuses a TTL or sweep interval that is 0, negative or unparsable: usage, exit 2.
#  2. fixed --ttl 12s --sweep-every 1s under wrk load until it has served 10,000 requests (3 s
#     rounds), then idle: a --verbose sweep line says "held 0 entries" within TTL + interval of
#     the load's end; the heap profile's inuse_space (when /debug/pprof/heap is served) falls back
#     near its start; SIGTERM exits 0 with "the store held 0 entries (0 bytes)".
#  3. leaky under the same load and the same idle time keeps every entry: held == requests, and
#     its inuse_space does not fall.
#  4. fixed --trim, the same TTL and load: RSS falls back too after the sweep that empties it
#     (without --trim glibc keeps part of the freed memory resident; printed).
# The TTL outlives the whole load, so the peak holds every request the load made, whatever the
# machine's speed: with a 2 s TTL a busy machine (12,523 requests in 3 s) held 2.6 MB at the
# peak, below the 8 MiB that makes "falls back" mean something.
# usage: http_fixed.sh BUILD_BIN_DIR
set -u
BIN=$1
. "$(dirname "$0")/../lib.sh"
T=$LC_TMP
TTL_S=12     # longer than the longest load, LOAD_ROUNDS * LOAD_S
SWEEP_S=1
LOAD_S=3
LOAD_ROUNDS=3
REQUESTS=10000 # entries held at the peak, about 11 MB
MIB=$((1024 * 1024))
for tool in wrk curl; do command -v $tool >/dev/null || lc_fail "$tool is not installed"; done

# --- 1. bad durations ---------------------------------------------------------------------
for flag in --ttl --sweep-every; do
    for value in 0 0s 0ms -1 -5s abc "" 10x; do
        "$BIN/fixed" "$flag" "$value" >"$T/out" 2>"$T/err"
        status=$?
        [ "$status" = 2 ] || lc_fail "'fixed $flag \"$value\"' exited $status, want 2"
        grep -q -- "$flag" "$T/err" || lc_fail "'fixed $flag \"$value\"': no word about $flag"
        grep -q '^usage: fixed' "$T/err" || lc_fail "'fixed $flag \"$value\"': no usage on stderr"
        [ -s "$T/out" ] && lc_fail "'fixed $flag \"$value\"' printed on stdout"
    done
    "$BIN/fixed" "$flag" >/dev/null 2>&1
    status=$?
    [ "$status" = 2 ] || lc_fail "'fixed $flag' without a value exited $status, want 2"
done

# --- helpers ------------------------------------------------------------------------------
# heap NAME LABEL: inuse_space of server NAME's heap profile now, or "" if it serves none.
heap() {
    local url_var="${1}_DEBUG_URL" file="$T/$1.$2.pb.gz"
    [ "$(curl -s --max-time 10 -o "$file" -w '%{http_code}' "${!url_var}/debug/pprof/heap")" = 200 ] ||
        return 0
    "$BIN/heap_inuse" "$file" || lc_fail "$1: cannot decode its heap profile"
}
rss() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"; }
# load NAME: wrk in rounds of LOAD_S seconds until REQUESTS requests completed (at most
# LOAD_ROUNDS rounds); sets `loaded` to how many completed. Run in this shell, not in $(...):
# lc_fail there would exit the subshell only.
load() {
    local url_var="${1}_URL" requests=0 round
    for round in $(seq $LOAD_ROUNDS); do
        wrk -t2 -c8 -d${LOAD_S}s "${!url_var}/process" >"$T/$1.wrk" 2>&1 || lc_fail "wrk: $(cat "$T/$1.wrk")"
        grep -q 'Non-2xx' "$T/$1.wrk" && lc_fail "$1: errors under load: $(cat "$T/$1.wrk")"
        requests=$((requests + $(awk '/requests in/ { print $1 }' "$T/$1.wrk")))
        [ "$requests" -ge $REQUESTS ] && break
    done
    [ "$requests" -ge $REQUESTS ] ||
        lc_fail "$1: $requests requests in $LOAD_ROUNDS rounds of ${LOAD_S} s, want $REQUESTS"
    loaded=$requests
}
stopped_line() { grep -E "^$1: stopped after [0-9]+ requests; the store held [0-9]+ entries" "$2"; }
# wait_emptied ERR_FILE SKIP_LINES DEADLINE_NS: waits until a --verbose sweep line after the first
# SKIP_LINES of ERR_FILE says the store holds 0 entries; prints when (ns), or nothing at the deadline.
wait_emptied() {
    while [ "$(date +%s%N)" -lt "$3" ]; do
        if tail -n +$(($2 + 1)) "$1" | grep -q '; held 0 entries (0 bytes)'; then
            date +%s%N
            return
        fi
        sleep 0.1
    done
}

# --- 2. fixed: entries and in-use bytes fall back after the load --------------------------
lc_start_server F "$BIN/fixed" --threads 2 --ttl ${TTL_S}s --sweep-every ${SWEEP_S}s --verbose
f_start=$(heap F start)
f_rss_start=$(rss "$F_PID")
load F
f_requests=$loaded
load_end=$(date +%s%N)
f_peak=$(heap F peak)
f_rss_peak=$(rss "$F_PID")
sweeps_at_end=$(grep -c ': sweep expired ' "$F_ERR")
# The last entry put expires TTL after the load ends; the next sweep, within one interval,
# removes it. 1.5 s of slack for a loaded machine.
emptied_at=$(wait_emptied "$F_ERR" "$sweeps_at_end" \
    $((load_end + (TTL_S + SWEEP_S) * 1000000000 + 1500000000)))
[ -n "$emptied_at" ] ||
    lc_fail "fixed: entries did not fall to 0 within TTL + interval; sweeps said: $(tail -5 "$F_ERR")"
emptied_ms=$(((emptied_at - load_end) / 1000000))
f_after=$(heap F after)
f_rss_after=$(rss "$F_PID")
max_held=$(sed -n 's/.*; held \([0-9]*\) entries.*/\1/p' "$F_ERR" | sort -n | tail -1)
[ "$max_held" -gt 0 ] || lc_fail "fixed: no sweep ever saw an entry"
lc_stop_server F
[ "$F_STATUS" = 0 ] || lc_fail "fixed: SIGTERM exit status $F_STATUS, want 0"
line=$(stopped_line fixed "$F_ERR") || lc_fail "fixed: no exit line: $(tail -3 "$F_ERR")"
case "$line" in *"the store held 0 entries (0 bytes)") ;; *) lc_fail "fixed: $line" ;; esac
served=$(echo "$line" | sed 's/.*stopped after \([0-9]*\) requests.*/\1/')
[ "$served" -ge "$f_requests" ] || lc_fail "fixed: served $served < wrk's $f_requests"

# --- 3. leaky: the same load, the same idle time, and nothing goes -------------------------
lc_start_server L "$BIN/leaky" --threads 2
l_start=$(heap L start)
load L
l_requests=$loaded
l_peak=$(heap L peak)
sleep $((emptied_ms / 1000 + 1))
l_after=$(heap L after)
lc_stop_server L
[ "$L_STATUS" = 0 ] || lc_fail "leaky: SIGTERM exit status $L_STATUS, want 0"
line=$(stopped_line leaky "$L_ERR") || lc_fail "leaky: no exit line: $(tail -3 "$L_ERR")"
served=$(echo "$line" | sed 's/.*stopped after \([0-9]*\) requests.*/\1/')
held=$(echo "$line" | sed 's/.*the store held \([0-9]*\) entries.*/\1/')
[ "$served" -ge "$l_requests" ] && [ "$held" = "$served" ] || lc_fail "leaky: $line (wrk: $l_requests)"

# --- in-use bytes from the heap profiles, when the servers serve them ----------------------
if [ -n "$f_start" ] && [ -n "$l_start" ]; then
    f_grew=$((f_peak - f_start))
    l_grew=$((l_peak - l_start))
    [ "$f_grew" -gt $((8 * MIB)) ] || lc_fail "fixed: inuse_space grew by $f_grew bytes only"
    [ "$l_grew" -gt $((8 * MIB)) ] || lc_fail "leaky: inuse_space grew by $l_grew bytes only"
    # fixed: back within 10% of what the load added (sampling noise, libevent's buffers)
    [ $((f_after - f_start)) -lt $((f_grew / 10)) ] ||
        lc_fail "fixed: inuse_space start $f_start, peak $f_peak, after idle $f_after"
    # leaky: still at least 80% of its peak (a sampled estimate, so not exact)
    [ $((l_after * 10)) -ge $((l_peak * 8)) ] ||
        lc_fail "leaky: inuse_space fell from $l_peak to $l_after"
    echo "inuse_space MiB (start / peak / after idle): fixed $((f_start / MIB)) / $((f_peak / MIB)) / $((f_after / MIB)), leaky $((l_start / MIB)) / $((l_peak / MIB)) / $((l_after / MIB))"
else
    echo "note: no /debug/pprof/heap on the servers; entries checked from the store's figures only"
fi

# --- 4. --trim gives RSS back too ---------------------------------------------------------
lc_start_server R "$BIN/fixed" --threads 2 --ttl ${TTL_S}s --sweep-every ${SWEEP_S}s --verbose --trim
r_rss_start=$(rss "$R_PID")
load R
r_rss_peak=$(rss "$R_PID")
# RSS after the sweep that emptied the store (and trimmed), however late it comes: a fixed sleep
# once read RSS before that sweep on a busy machine.
r_sweeps_at_end=$(grep -c ': sweep expired ' "$R_ERR")
[ -n "$(wait_emptied "$R_ERR" "$r_sweeps_at_end" $(($(date +%s%N) + (TTL_S + 20) * 1000000000)))" ] ||
    lc_fail "fixed --trim: entries did not fall to 0 in $((TTL_S + 20)) s; sweeps said: $(tail -5 "$R_ERR")"
r_rss_after=$(rss "$R_PID")
grep -q '; malloc_trim took ' "$R_ERR" || lc_fail "--trim: no sweep line mentions malloc_trim"
lc_stop_server R
[ "$R_STATUS" = 0 ] || lc_fail "fixed --trim: SIGTERM exit status $R_STATUS, want 0"
r_grew=$((r_rss_peak - r_rss_start))
[ "$r_grew" -gt $((8 * MIB)) ] || lc_fail "--trim: RSS grew by $r_grew bytes only under load"
[ $((r_rss_after - r_rss_start)) -lt $((r_grew / 4)) ] ||
    lc_fail "--trim: RSS start $r_rss_start, peak $r_rss_peak, after idle $r_rss_after"

echo "RSS MiB (start / peak / after idle): fixed $((f_rss_start / MIB)) / $((f_rss_peak / MIB)) / $((f_rss_after / MIB)), fixed --trim $((r_rss_start / MIB)) / $((r_rss_peak / MIB)) / $((r_rss_after / MIB))"
echo "PASS http_fixed: fixed held 0 entries ${emptied_ms} ms after the load ($f_requests requests, at most $max_held held after a sweep); leaky held all $held"

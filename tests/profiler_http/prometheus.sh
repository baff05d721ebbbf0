#!/usr/bin/env bash
# /metrics as a fleet would use it: a real Prometheus (Debian package prometheus) scrapes a
# live leaky and a live fixed every 500 ms with deploy/prometheus/leak-rules.yml loaded, and
# its HTTP API answers queries over the scraped series:
#  - promtool check metrics accepts the exposition (names, HELP/TYPE, _total counters), which
#    has the standard process_* metrics and heapprof_build_info;
#  - Content-Type text/plain; version=0.0.4;
#  - up{job="leaky"} is 1, heapprof_inuse_bytes has a sample, and after 300 more requests
#    leakcase_store_entries reaches them and heapprof_inuse_bytes has grown;
#  - under the same steady load, the HeapprofHeapLeak alert fires for leaky and never for fixed.
#    The rules are the shipped ones with time running 300 times faster (15m -> 3s, 1h -> 12s,
#    2h -> 24s, 3600 s -> 12 s): the expressions are unchanged, so the test takes seconds.
#    fixed sweeps every 300 ms (TTL 2 s), so a 3 s window holds troughs.
# Skipped (77) only when prometheus is not installed (scripts/test.sh installs it).
# usage: prometheus.sh LEAKY LOADGEN ALLOC_LOOP LIBHEAPPROF
set -u
. "$(dirname "$0")/http_lib.sh"
command -v prometheus >/dev/null || lc_skip "prometheus (Debian package prometheus) is not installed"
command -v python3 >/dev/null || lc_fail "python3 is not installed"

HEAPPROF_RATE=4096 lc_start_server S "$PH_LEAKY" --threads 2
[ "$(ph_get "$S_DEBUG_URL/metrics")" = 200 ] || lc_fail "/metrics: $(cat "$LC_TMP/body")"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$LC_TMP/headers" ||
    lc_fail "/metrics has not the 0.0.4 text format's Content-Type"
if command -v promtool >/dev/null; then
    promtool check metrics <"$LC_TMP/body" >"$LC_TMP/promtool.out" 2>&1 ||
        lc_fail "promtool check metrics: $(cat "$LC_TMP/promtool.out")"
fi
for m in heapprof_inuse_bytes heapprof_glibc_inuse_bytes heapprof_alloc_bytes_total \
    process_resident_memory_bytes process_virtual_memory_bytes process_start_time_seconds \
    process_cpu_seconds_total process_open_fds process_max_fds \
    leakcase_store_entries leakcase_store_puts_total; do
    grep -Eq "^$m [0-9.e+-]+$" "$LC_TMP/body" || lc_fail "/metrics has no sample for $m"
done
grep -Eq '^heapprof_build_info\{version="[0-9]+\.[0-9]+[^"]*"\} 1$' "$LC_TMP/body" ||
    lc_fail "/metrics has no heapprof_build_info{version=...} 1"
if grep -Eq '^heapprof_(rss|virtual)_bytes ' "$LC_TMP/body"; then
    lc_fail "/metrics still duplicates process_* under heapprof_ names"
fi

# fixed under steady load from its start (its fill-up is then inside the rules' start-up
# margin, as it would be in a fleet), at every allocation sampled so its trough is exact.
HEAPPROF_RATE=1 lc_start_server F "$(dirname "$PH_LEAKY")/fixed" --threads 2 --ttl 2s \
    --sweep-every 300ms
"$PH_LOADGEN" --url "$F_URL/process" --rate 300 --duration 90s >/dev/null 2>&1 &
fixed_load=$!
LC_PIDS="$LC_PIDS $fixed_load"
rules=$(dirname "$0")/../../deploy/prometheus/leak-rules.yml
sed -e 's/\[15m\]/[3s]/g' -e 's/\[1h\]/[12s]/g' -e 's/for: 1h/for: 12s/' -e 's/\* 3600/* 12/' \
    -e 's/> 7200/> 24/' "$rules" >"$LC_TMP/leak-rules.yml"
grep -q '\[15m\]\|\[1h\]\|for: 1h\|3600\|7200' "$LC_TMP/leak-rules.yml" &&
    lc_fail "the scaled copy of $rules kept an unscaled duration"

# Prometheus cannot listen on port 0: take a free port from the kernel, then give it.
web_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target=${S_DEBUG_URL#http://}
mkdir -p "$LC_TMP/tsdb"
cat >"$LC_TMP/prometheus.yml" <<YML
global:
  scrape_interval: 500ms
  scrape_timeout: 500ms
  evaluation_interval: 500ms
rule_files:
  - $LC_TMP/leak-rules.yml
scrape_configs:
  - job_name: leaky
    metrics_path: /metrics
    static_configs:
      - targets: ['$target']
  - job_name: fixed
    static_configs:
      - targets: ['${F_DEBUG_URL#http://}']
YML
prometheus --config.file="$LC_TMP/prometheus.yml" --storage.tsdb.path="$LC_TMP/tsdb" \
    --web.listen-address="127.0.0.1:$web_port" --log.level=warn >"$LC_TMP/prom.log" 2>&1 &
prom=$!
LC_PIDS="$LC_PIDS $prom"
API="http://127.0.0.1:$web_port/api/v1"

# query EXPR: the first sample's value, or "" (none yet).
query() {
    curl -s --max-time 5 -G --data-urlencode "query=$1" "$API/query" |
        python3 -c 'import json,sys
r = json.load(sys.stdin)
assert r["status"] == "success", r
v = r["data"]["result"]
print(v[0]["value"][1] if v else "")' 2>/dev/null
}

# wait_for EXPR: until the query has a sample (30 s at most); prints its value.
wait_for() {
    local v i
    for i in $(seq 60); do
        kill -0 "$prom" 2>/dev/null || lc_fail "prometheus died: $(cat "$LC_TMP/prom.log")"
        v=$(query "$1")
        [ -n "$v" ] && { echo "$v"; return 0; }
        sleep 0.5
    done
    lc_fail "no sample for '$1' after 30 s: $(tail -5 "$LC_TMP/prom.log")"
}

[ "$(wait_for 'up{job="leaky"}')" = 1 ] || lc_fail "Prometheus cannot scrape leaky"
inuse0=$(wait_for 'heapprof_inuse_bytes{job="leaky"}')
ph_load "$S_URL/process" 300
entries=$(wait_for 'leakcase_store_entries{job="leaky"} >= 300')
[ "$entries" = 300 ] || lc_fail "leakcase_store_entries is $entries, want 300"
inuse1=$(wait_for "heapprof_inuse_bytes{job=\"leaky\"} > $inuse0 + 200000")
rate=$(wait_for 'max_over_time(heapprof_sample_rate_bytes{job="leaky"}[1m])')
[ "$rate" = 4096 ] || lc_fail "heapprof_sample_rate_bytes is $rate"
echo "Prometheus saw heapprof_inuse_bytes go from $inuse0 to $inuse1 and 300 store entries"

# The leak alert: the same load on leaky now. It fires for leaky (within 60 s); fixed, older
# than the start-up margin by then and judged all along, never had it firing. (Pending is not
# an alert: on this busy machine loadgen's rate can sag and recover for a few seconds, which
# moves fixed's floor for a moment; `for:` is there to wait that out, as in production.)
"$PH_LOADGEN" --url "$S_URL/process" --rate 300 --duration 60s >/dev/null 2>&1 &
leaky_load=$!
LC_PIDS="$LC_PIDS $leaky_load"
for i in $(seq 120); do
    [ -n "$(query 'ALERTS{alertname="HeapprofHeapLeak",alertstate="firing",job="leaky"}')" ] && break
    kill -0 "$prom" 2>/dev/null || lc_fail "prometheus died: $(cat "$LC_TMP/prom.log")"
    sleep 0.5
done
[ -n "$(query 'ALERTS{alertname="HeapprofHeapLeak",alertstate="firing",job="leaky"}')" ] ||
    lc_fail "HeapprofHeapLeak did not fire for leaky within 60 s"
# Judged for a while: older than the margin by some seconds (the load on leaky went on).
for i in $(seq 60); do
    age=$(query 'time() - process_start_time_seconds{job="fixed"}')
    awk -v a="$age" 'BEGIN { exit !(a > 30) }' && break
    sleep 0.5
done
awk -v a="$age" 'BEGIN { exit !(a > 30) }' || lc_fail "fixed is only ${age}s old: not yet judged"
[ -n "$(query 'instance:heapprof_inuse_bytes:min15m{job="fixed"}')" ] ||
    lc_fail "no recorded trough for fixed: the rules never judged it"
fixed_alerts=$(query 'count_over_time(ALERTS{alertname="HeapprofHeapLeak",alertstate="firing",job="fixed"}[5m])')
if [ -n "$fixed_alerts" ]; then
    for e in 'instance:heapprof_inuse_bytes:min15m{job="fixed"}' \
        'instance:heapprof_inuse_bytes:min15m_deriv1h{job="fixed"}' 'ALERTS{job="fixed"}'; do
        echo "$e over the last minute:"
        curl -s --max-time 5 -G --data-urlencode "query=$e[2m]" "$API/query" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["data"]["result"]:
    print(r["metric"].get("alertstate", ""), " ".join(v for _, v in r["values"]))' 
    done
    lc_fail "HeapprofHeapLeak fired for fixed"
fi
echo "HeapprofHeapLeak fired for leaky; fixed (${age%.*}s old, same load) never had it"
kill "$leaky_load" "$fixed_load" 2>/dev/null
wait "$leaky_load" "$fixed_load" 2>/dev/null

kill -TERM "$prom"
for i in $(seq 100); do kill -0 "$prom" 2>/dev/null || break; sleep 0.1; done
wait "$prom" 2>/dev/null
lc_stop_server S
[ "$S_STATUS" = 0 ] || lc_fail "leaky exited $S_STATUS"
lc_stop_server F
[ "$F_STATUS" = 0 ] || lc_fail "fixed exited $F_STATUS"
echo "ok: Prometheus scrapes /metrics, answers queries, and the leak alert tells leaky from fixed"

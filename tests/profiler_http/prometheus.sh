#!/usr/bin/env bash
# /metrics as a fleet would use it: a real Prometheus (Debian package prometheus) scrapes a
# live leaky every second, and its HTTP API answers queries over the scraped series:
#  - promtool check metrics accepts the exposition (names, HELP/TYPE, _total counters);
#  - Content-Type text/plain; version=0.0.4;
#  - up{job="leaky"} is 1, heapprof_inuse_bytes has a sample, and after 300 more requests
#    leakcase_store_entries reaches them and heapprof_inuse_bytes has grown.
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
for m in heapprof_inuse_bytes heapprof_glibc_inuse_bytes heapprof_rss_bytes \
    heapprof_alloc_bytes_total leakcase_store_entries leakcase_store_puts_total; do
    grep -Eq "^$m [0-9.e+-]+$" "$LC_TMP/body" || lc_fail "/metrics has no sample for $m"
done

# Prometheus cannot listen on port 0: take a free port from the kernel, then give it.
web_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target=${S_DEBUG_URL#http://}
mkdir -p "$LC_TMP/tsdb"
cat >"$LC_TMP/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: leaky
    metrics_path: /metrics
    static_configs:
      - targets: ['$target']
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

kill -TERM "$prom"
for i in $(seq 100); do kill -0 "$prom" 2>/dev/null || break; sleep 0.1; done
wait "$prom" 2>/dev/null
lc_stop_server S
[ "$S_STATUS" = 0 ] || lc_fail "leaky exited $S_STATUS"
echo "ok: Prometheus scrapes /metrics and answers queries over the in-use series"

#!/usr/bin/env bash
# /debug/memstats against leaky under load, where the store's memory dominates every count:
#  - valid JSON (python3's parser), application/json, every documented key a number, the keys
#    loadgen reads (rss_bytes, glibc_inuse_bytes) at the top level;
#  - the store's figures: entries = puts = requests served (leaky never forgets);
#  - the profiler's estimate against glibc's own count (mallinfo2) over the load: the growth of
#    inuse_bytes is within 10% of the growth of glibc_inuse_bytes, and of store_bytes.
#    Why 10%: at HEAPPROF_RATE=8192 the ~63 MiB the store gains are ~8000 samples, a relative
#    standard error of ~1.1%; glibc's count grows ~2.4% more than the store (each 1104-byte
#    entry is a 1120-byte chunk, +1.4%, and uthash's bucket array grows with the entries,
#    which the estimate also sees); libevent's buffers are the same before and after. 10% is
#    over 6 standard errors beyond that bias, and a profiler that lost or double-counted a
#    tenth of the samples would fail it;
#  - RSS holds the store (at least 90% of store_bytes) and peak RSS >= RSS; uptime and
#    threads are right.
# usage: memstats.sh LEAKY LOADGEN ALLOC_LOOP LIBHEAPPROF
set -u
. "$(dirname "$0")/http_lib.sh"
command -v python3 >/dev/null || lc_fail "python3 is not installed"

HEAPPROF_RATE=8192 lc_start_server S "$PH_LEAKY" --threads 2
M="$S_DEBUG_URL/debug/memstats"
[ "$(ph_get "$M")" = 200 ] || lc_fail "memstats: $(cat "$LC_TMP/body")"
grep -qi '^Content-Type: application/json' "$LC_TMP/headers" || lc_fail "memstats is not JSON"
cp "$LC_TMP/body" "$LC_TMP/m0.json"
# The bound below needs the store to gain at least 40 MB (enough samples): how many requests a
# 3 s burst gets through depends on how busy the machine is, so bursts repeat until it has
# (at most 10: a server that stores nothing fails).
requests=0
for burst in $(seq 10); do
    "$PH_LOADGEN" --url "$S_URL/process" --rate 20000 --duration 3s --connections 4 \
        >"$LC_TMP/load.out" 2>&1 || lc_fail "loadgen: $(cat "$LC_TMP/load.out")"
    served=$(sed -n 's/^ *requests \([0-9]*\) .*errors 0$/\1/p' "$LC_TMP/load.out")
    [ -n "$served" ] || lc_fail "loadgen had errors: $(cat "$LC_TMP/load.out")"
    requests=$((requests + served))
    [ "$(ph_get "$M")" = 200 ] || lc_fail "memstats during the load"
    python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["store_bytes"] -
        json.load(open(sys.argv[2]))["store_bytes"] <= 40e6)' "$LC_TMP/body" "$LC_TMP/m0.json" &&
        break
done
echo "$requests requests in $burst burst(s) of 3 s"
[ "$(ph_get "$M")" = 200 ] || lc_fail "memstats after the load"
cp "$LC_TMP/body" "$LC_TMP/m1.json"

python3 - "$LC_TMP/m0.json" "$LC_TMP/m1.json" "$requests" "$(ls /proc/"$S_PID"/task | wc -l)" <<'PY' ||
import json, sys
m0, m1 = (json.load(open(p)) for p in sys.argv[1:3])
requests, threads = int(sys.argv[3]), int(sys.argv[4])
keys = """sample_rate_bytes inuse_bytes peak_inuse_bytes inuse_objects alloc_bytes_total alloc_objects_total
samples_live buckets overhead_bytes symbol_cache_bytes glibc_inuse_bytes glibc_arena_bytes
glibc_arena_inuse_bytes glibc_free_bytes glibc_mmap_bytes rss_bytes rss_peak_bytes
virtual_bytes threads uptime_seconds store_entries store_bytes store_puts_total
store_expired_total store_sweeps_total""".split()
for m in (m0, m1):
    for k in keys:
        assert isinstance(m.get(k), (int, float)), f"{k} missing or not a number: {m.get(k)}"
assert m1["sample_rate_bytes"] == 8192
assert m1["store_entries"] == m1["store_puts_total"] == requests, (m1["store_entries"], requests)
assert m1["store_expired_total"] == 0
d_est = m1["inuse_bytes"] - m0["inuse_bytes"]
d_glibc = m1["glibc_inuse_bytes"] - m0["glibc_inuse_bytes"]
d_store = m1["store_bytes"] - m0["store_bytes"]
print(f"requests {requests}: estimate +{d_est:.0f} B, glibc +{d_glibc} B, store +{d_store} B "
      f"(estimate/glibc {d_est / d_glibc:.3f}, estimate/store {d_est / d_store:.3f}); "
      f"rss {m1['rss_bytes']} B, peak {m1['rss_peak_bytes']} B, overhead {m1['overhead_bytes']} B")
assert d_store > 40e6, "the load was too small to judge"
assert abs(d_est / d_glibc - 1) <= 0.10, "estimate vs glibc"
assert abs(d_est / d_store - 1) <= 0.10, "estimate vs store"
assert m1["rss_bytes"] >= 0.9 * m1["store_bytes"]
assert m1["rss_peak_bytes"] >= m1["rss_bytes"]
for m in (m0, m1):
    assert m["peak_inuse_bytes"] >= m["inuse_bytes"], (m["peak_inuse_bytes"], m["inuse_bytes"])
assert m1["peak_inuse_bytes"] >= m0["peak_inuse_bytes"]
assert m1["threads"] == threads, (m1["threads"], threads)
assert 3 <= m1["uptime_seconds"] < 300 and m1["uptime_seconds"] > m0["uptime_seconds"]
PY
    lc_fail "memstats figures (above)"

lc_stop_server S
[ "$S_STATUS" = 0 ] || lc_fail "leaky exited $S_STATUS"
echo "ok: memstats is JSON; the estimate tracks glibc's count and the store under load"

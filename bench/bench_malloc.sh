#!/bin/sh
# bench_malloc.sh: ns per malloc+free pair (1 KiB) for the profiler against plain glibc (at the
# default rate) and against heaptrack, jemalloc's prof and gperftools' HEAPPROFILE (at every
# allocation). The section of scripts/bench.sh about the profiler's cost.
#
#   bench/bench_malloc.sh BUILD_DIR [ROUNDS]
#
# The machine is shared and noisy, so the variants are interleaved: each round runs every
# variant once (bench_malloc itself takes the median of --reps runs), and the table shows the
# median over rounds and the median of the per-round ratios to the round's baseline. Ratios
# from one round are what to quote: they share the machine's state at that moment.
set -eu

BUILD=${1:?usage: bench_malloc.sh BUILD_DIR [ROUNDS]}
ROUNDS=${2:-7}
BIN=$BUILD/bin/bench_malloc
LINKED=$BUILD/bin/bench_malloc_linked
SO=$(cd "$BUILD/lib" && pwd)/libheapprof.so
LIBDIR=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
JEMALLOC=$LIBDIR/libjemalloc.so.2
TCMALLOC=$LIBDIR/libtcmalloc.so.4
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# run NAME THREADS ITERS CMD...: append "NAME round ns" to $OUT/results
run() {
    name=$1 threads=$2 iters=$3
    shift 3
    ns=$("$@" --threads "$threads" --iters "$iters" --reps 3 2>/dev/null |
        sed -n 's/.*median=\([0-9.]*\).*/\1/p' | tail -1)
    [ -n "$ns" ] || ns=nan
    echo "$name $round $ns" >>"$OUT/results"
}

# table BASELINE: median ns and median ratio to BASELINE per name, in first-seen order
table() {
    awk -v base="$1" '
        { ns[$1, $2] = $3; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } rounds[$2] = 1 }
        function median(a, k,   i, j, t) {
            for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        END {
            printf "%-34s %12s %14s\n", "variant", "ns/pair", "x " base
            for (i = 0; i < n; i++) {
                name = order[i]; k = 0; m = 0
                for (r in rounds) {
                    if (ns[name, r] != "nan") v[++k] = ns[name, r]
                    if (ns[base, r] > 0 && ns[name, r] != "nan") q[++m] = ns[name, r] / ns[base, r]
                }
                printf "%-34s %12.1f %14.3f\n", name, median(v, k), median(q, m)
                delete v; delete q
            }
        }' "$OUT/results"
    : >"$OUT/results"
}

echo "== default rate (HEAPPROF_RATE unset = 524288), 1 KiB pairs, $ROUNDS rounds"
for threads in 1 2; do
    round=0
    while [ $round -lt "$ROUNDS" ]; do
        run "glibc/${threads}t" "$threads" 2000000 "$BIN"
        run "heapprof-preload/${threads}t" "$threads" 2000000 env LD_PRELOAD="$SO" "$BIN"
        run "heapprof-linked/${threads}t" "$threads" 2000000 "$LINKED"
        round=$((round + 1))
    done
    table "glibc/${threads}t"
done

echo
echo "== every allocation sampled (rate 1), 1 KiB pairs, $ROUNDS rounds"
for threads in 1 2; do
    round=0
    while [ $round -lt "$ROUNDS" ]; do
        run "heapprof-rate1/${threads}t" "$threads" 200000 env HEAPPROF_RATE=1 LD_PRELOAD="$SO" "$BIN"
        run "heapprof-rate1-linked/${threads}t" "$threads" 200000 env HEAPPROF_RATE=1 "$LINKED"
        if command -v heaptrack >/dev/null; then
            run "heaptrack/${threads}t" "$threads" 200000 heaptrack -o "$OUT/ht.$round" "$BIN"
        fi
        if [ -e "$JEMALLOC" ]; then
            run "jemalloc-prof/${threads}t" "$threads" 100000 env LD_PRELOAD="$JEMALLOC" \
                MALLOC_CONF="prof:true,lg_prof_sample:0,prof_prefix:$OUT/je" "$BIN"
        fi
        if [ -e "$TCMALLOC" ]; then
            run "gperftools-heapprofile/${threads}t" "$threads" 50000 env LD_PRELOAD="$TCMALLOC" \
                HEAPPROFILE="$OUT/gp" "$BIN"
        fi
        round=$((round + 1))
    done
    table "heapprof-rate1/${threads}t"
done

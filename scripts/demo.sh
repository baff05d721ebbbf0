#!/usr/bin/env bash
# scripts/demo.sh: the case study, from a fresh machine, in about a minute once the packages are
# there (66 s measured from a fresh clone: the two servers run side by side for DURATION=60s).
#
#  1. installs what is missing and builds leaky, fixed and loadgen;
#  2. runs leaky and fixed side by side (ports of their own, profiler on) under the same steady
#     load from loadgen, which downloads a heap profile every PROFILE_EVERY;
#  3. writes out/leaky/, out/fixed/ (profiles, timelines, reports) and out/inuse.png + .svg;
#  4. prints both verdicts and the diagnosis: what grew between leaky's first and last
#     profiles (go tool pprof -top -base, or loadgen diff without Go) and the source line that
#     holds the memory (go tool pprof -list);
#  5. stops everything it started, and exits non-zero with a message if any step fails.
#
# Knobs (environment): DURATION=60s RATE=2000 TTL=6s SWEEP=3s PROFILE_EVERY=1s OUT=out
# LEAKCASE_BIN=DIR: run the programs already built in DIR (e.g. build/bin) and skip step 1.
# The verdict judges the sawtooth's troughs and peaks from its first drop on (after TTL + one
# sweep), so a sweep period several times shorter than the run gives it many whole periods.
# HEAPPROF_RATE=65536: the demo samples every 64 KiB on average, eight times more often than the
# production default (512 KiB), so that a one-minute chart is smooth; both are cheap.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-60s}
RATE=${RATE:-2000}
TTL=${TTL:-6s}
SWEEP=${SWEEP:-3s}
PROFILE_EVERY=${PROFILE_EVERY:-1s}
OUT=${OUT:-$LC_ROOT/out}
export HEAPPROF_RATE=${HEAPPROF_RATE:-65536}

die() {
    echo "demo: $*" >&2
    exit 1
}
step() { printf '\n==> %s\n' "$*"; }

if [ -n "${LEAKCASE_BIN:-}" ]; then
    # An existing build, used as it is: no apt, no configure, no build (tests/e2e runs the demo
    # against the tree under test while ctest runs other tests from it).
    bin=$LEAKCASE_BIN
    for prog in leaky fixed loadgen; do
        [ -x "$bin/$prog" ] || die "LEAKCASE_BIN=$bin has no $prog (build it first)"
    done
else
    # shellcheck disable=SC2086 # word lists
    lc_ensure_packages $LC_BUILD_PACKAGES curl gnuplot-nox golang-go golang-github-google-pprof-dev ||
        die "cannot install packages"
    build_dir=${BUILD_DIR:-$LC_ROOT/build}
    step "building leaky, fixed and loadgen in $build_dir"
    cmake -S "$LC_ROOT" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build "$build_dir" -j "$(nproc)" --target leaky fixed loadgen >/dev/null ||
        die "the build failed (run: cmake --build $build_dir)"
    bin="$build_dir/bin"
fi
. "$LC_ROOT/tests/lib.sh" # lc_start_server / lc_stop_server: port 0, cleanup by PID

rm -rf "$OUT/leaky" "$OUT/fixed"
mkdir -p "$OUT" || die "cannot create $OUT"

step "starting leaky, and fixed with --ttl $TTL --sweep-every $SWEEP (HEAPPROF_RATE=$HEAPPROF_RATE)"
lc_start_server LEAKY "$bin/leaky" --threads 1
lc_start_server FIXED "$bin/fixed" --threads 1 --ttl "$TTL" --sweep-every "$SWEEP"
echo "    leaky  $LEAKY_URL/process   profiles at $LEAKY_DEBUG_URL/debug/pprof/heap"
echo "    fixed  $FIXED_URL/process   profiles at $FIXED_DEBUG_URL/debug/pprof/heap"

step "$DURATION of load on each, $RATE req/s, a heap profile every $PROFILE_EVERY"
run_load() { # NAME URL DEBUG_URL
    "$bin/loadgen" --url "$2/process" --rate "$RATE" --duration "$DURATION" \
        --profile-url "$3/debug/pprof/heap" --profile-every "$PROFILE_EVERY" \
        --out "$OUT/$1" --label "$1" >"$OUT/$1.txt" 2>"$OUT/$1.err"
}
run_load leaky "$LEAKY_URL" "$LEAKY_DEBUG_URL" &
leaky_load=$!
run_load fixed "$FIXED_URL" "$FIXED_DEBUG_URL" &
fixed_load=$!
LC_PIDS="$LC_PIDS $leaky_load $fixed_load"
wait "$leaky_load" || die "loadgen against leaky failed: $(cat "$OUT/leaky.err" "$OUT/leaky.txt")"
wait "$fixed_load" || die "loadgen against fixed failed: $(cat "$OUT/fixed.err" "$OUT/fixed.txt")"

lc_stop_server LEAKY
lc_stop_server FIXED
[ "$LEAKY_STATUS" = 0 ] && [ "$FIXED_STATUS" = 0 ] ||
    die "a server did not exit cleanly (leaky $LEAKY_STATUS, fixed $FIXED_STATUS)"

step "in-use bytes over time: $OUT/inuse.png and $OUT/inuse.svg"
for format in png svg; do
    "$bin/loadgen" plot --title "Heap in use: leaky vs fixed (TTL $TTL, swept every $SWEEP), $RATE req/s" \
        -o "$OUT/inuse.$format" "$OUT/leaky" "$OUT/fixed" >/dev/null ||
        die "loadgen plot failed"
done

step "verdicts"
leaky_verdict=$(grep '^verdict:' "$OUT/leaky.txt" || true)
fixed_verdict=$(grep '^verdict:' "$OUT/fixed.txt" || true)
echo "leaky: $leaky_verdict"
echo "fixed: $fixed_verdict"

profiles=("$OUT"/leaky/heap-*.pb.gz)
[ ${#profiles[@]} -ge 3 ] || die "leaky: only ${#profiles[@]} profiles were captured"
# heap-0000 is taken at time zero, before any request; the first with load is heap-0001.
first=${profiles[1]}
last=${profiles[${#profiles[@]} - 1]}
step "diagnosis: what grew in leaky between $(basename "$first") and $(basename "$last")"
if command -v go >/dev/null 2>&1; then
    export PPROF_TMPDIR="$OUT/.pprof" GOCACHE="$OUT/.gocache"
    echo "\$ go tool pprof -top -base $first $last"
    go tool pprof -top -nodecount=8 -base "$first" "$last" 2>/dev/null | sed 's/^/    /' ||
        die "go tool pprof -top failed"
    echo
    echo "\$ go tool pprof -list store_put $last"
    go tool pprof -list 'store_put' "$last" 2>/dev/null | sed 's/^/    /' ||
        die "go tool pprof -list failed"
else
    echo "\$ loadgen diff $first $last      (Go is not installed: the same table without it)"
    "$bin/loadgen" diff "$first" "$last" | sed 's/^/    /' || die "loadgen diff failed"
fi

# The annotated source needs the standalone pprof (Go 1.19's bundled one shows an empty Source
# view for our binaries): built once, offline, from Debian's sources (see README).
if [ -z "${LEAKCASE_BIN:-}" ] && command -v go >/dev/null 2>&1 &&
    pprof=$(lc_pprof "$build_dir/tools" 2>/dev/null); then
    echo
    echo "annotated source in a browser: $pprof -http=127.0.0.1:8081 $last"
    echo "    then open http://127.0.0.1:8081/ui/source?f=store_put"
fi

case "$leaky_verdict" in "verdict: LEAK"*) ;; *) die "expected leaky to LEAK: '$leaky_verdict'" ;; esac
case "$fixed_verdict" in "verdict: BOUNDED"*) ;; *) die "expected fixed to be BOUNDED: '$fixed_verdict'" ;; esac
step "done: leaky leaks in store_put, fixed stays bounded. Chart: $OUT/inuse.png"

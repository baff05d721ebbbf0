#!/usr/bin/env bash
# scripts/bench.sh: the benchmarks behind BENCHMARKS.md. Installs what is missing, builds, runs
# the sections asked for (default: all) and prints markdown tables. Every figure is a median of
# ROUNDS runs, and every ratio is against a baseline measured in the same invocation,
# interleaved with it, because these machines are shared and noisy.
#   scripts/bench.sh [SECTION ...]      ROUNDS=3 DURATION=10s
# Sections: rss (leaky's RSS per request), service (leaky vs a null store), profiler (leaky with the profiler at the default
# rate vs off), malloc (ns per malloc+free pair vs glibc, heaptrack, jemalloc, gperftools),
# pprof (time to encode and serve a profile), serve (time to serve heap, threads and CPU
# profiles of a live leaky; BASE_BIN=DIR/bin compares with another build), fixed (sweep cost, p99 under sweeps, peak in-use
# vs the bound), loadgen (--rate max vs wrk, rate accuracy, a stalled server), verdict (error
# rates on simulated runs), share (the CPU tests' share check: its error rates on simulated
# profiles); unwind (ns per stack walk of the CPU and threads profiles' unwinder, libunwind's
# shared cache off, as the profiler runs it, vs on); contention (the lock interposer's cost, req/s with the mutex and
# block profiles on, fixed --sweep-mode scan vs batched with the mutex profile's top entry); demo (scripts/demo.sh 20 times under stress-ng: only when asked);
# fuzz (each libFuzzer target of fuzz/ for FUZZ_SECONDS=300: runs, execs/s, coverage, findings;
# only when asked).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2086
lc_ensure_packages $LC_BUILD_PACKAGES $LC_TEST_PACKAGES $LC_BENCH_PACKAGES
build_dir=${BUILD_DIR:-$LC_ROOT/build}
lc_build "$build_dir" >/dev/null
bin="$build_dir/bin"
. "$LC_ROOT/tests/lib.sh" # lc_start_server / lc_stop_server: port 0, cleanup by PID
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# wrk_rps URL CONNECTIONS: requests/s of one wrk -t1 run.
wrk_rps() {
    wrk -t1 -c"$2" -d"$DURATION" "$1" | awk '/^Requests\/sec:/ {print $2}'
}

# rps_table TITLE NAME:PROGRAM:HEAPPROF_RATE...: req/s of each server under wrk -t1 -c32, the
# servers interleaved within each round; the first is the baseline. The ratio column is the
# median of the per-round ratios (each against the baseline of its own round, so a slow spell
# of the shared machine hits both sides), which is steadier than the ratio of the medians.
# Servers get one event loop (--threads 1) so that server and wrk each have one of the cores.
rps_table() {
    local title=$1 round spec name program rate rps base
    shift
    for round in $(seq "$ROUNDS"); do
        base=""
        for spec in "$@"; do
            IFS=: read -r name program rate <<<"$spec"
            HEAPPROF_RATE=$rate lc_start_server SRV "$bin/$program" --threads 1
            rps=$(wrk_rps "$SRV_URL/process" 32)
            lc_stop_server SRV
            [ -n "$base" ] || base=$rps
            echo "$rps" >>"$LC_TMP/rps-$name"
            awk -v a="$rps" -v b="$base" 'BEGIN {print a/b}' >>"$LC_TMP/ratio-$name"
            echo "  round $round $name: $rps req/s" >&2
        done
    done
    echo "### $title: /process req/s, wrk -t1 -c32 -d$DURATION, --threads 1, $ROUNDS rounds"
    echo
    echo "| server | median req/s | median ratio per round | ratios |"
    echo "|---|---:|---:|---|"
    for spec in "$@"; do
        IFS=: read -r name program rate <<<"$spec"
        printf '| %s | %s | %.3f | %s |\n' "$name" "$(median <"$LC_TMP/rps-$name")" \
            "$(median <"$LC_TMP/ratio-$name")" \
            "$(awk '{printf "%s%.2f", (NR > 1 ? " " : ""), $1}' "$LC_TMP/ratio-$name")"
        rm -f "$LC_TMP/rps-$name" "$LC_TMP/ratio-$name"
    done
    echo
}

# rss: what the leak costs in memory: leaky's RSS before and after a 3 s wrk -t1 -c16 run,
# per request served, and that SIGTERM still stops it cleanly (exit 0).
bench_rss() {
    lc_start_server SRV "$bin/leaky" --threads 1
    local before after requests
    before=$(awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$SRV_PID/status")
    wrk -t1 -c16 -d3s "$SRV_URL/process" >/dev/null
    after=$(awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$SRV_PID/status")
    lc_stop_server SRV
    requests=$(sed -n 's/.*stopped after \([0-9]*\) requests.*/\1/p' "$SRV_ERR")
    echo "### rss: leaky under wrk -t1 -c16 -d3s"
    echo
    echo "| requests | RSS before | RSS after | RSS growth per request | exit status on SIGTERM |"
    echo "|---:|---:|---:|---:|---:|"
    echo "| $requests | $((before / 1024)) KiB | $((after / 1024)) KiB |" \
        "$(((after - before) / requests)) bytes | $SRV_STATUS |"
    echo
}

# cpu: leaky's req/s while a CPU profile runs (SIGPROF at 100 Hz on every thread) vs not, the
# two interleaved within each round. The profile outlasts the load by a second, so what is
# measured is the sampling; encoding the profile (once, at the end) is timed by "pprof".
bench_cpu() {
    local round mode rps seconds
    seconds=$(($(lc_duration_s "$DURATION") + 1))
    for round in $(seq "$ROUNDS"); do
        for mode in off on; do
            lc_start_server SRV "$bin/leaky" --threads 1
            local curl_pid=""
            if [ "$mode" = on ]; then
                curl -s -o "$LC_TMP/cpu.pb.gz" --max-time 60 \
                    "$SRV_DEBUG_URL/debug/pprof/profile?seconds=$seconds" &
                curl_pid=$!
            fi
            rps=$(wrk_rps "$SRV_URL/process" 32)
            [ -z "$curl_pid" ] || wait "$curl_pid" || lc_fail "the CPU profile request failed"
            lc_stop_server SRV
            echo "$rps" >>"$LC_TMP/cpu-$mode"
            echo "  round $round cpu profile $mode: $rps req/s" >&2
        done
    done
    local off on
    off=$(median <"$LC_TMP/cpu-off")
    on=$(median <"$LC_TMP/cpu-on")
    echo "### cpu: leaky req/s with a CPU profile running, wrk -t1 -c32 -d$DURATION, median of $ROUNDS"
    echo
    echo "| leaky | req/s | ratio |"
    echo "|---|---:|---:|"
    echo "| no CPU profile | $off | 1.000 |"
    echo "| /debug/pprof/profile?seconds=$seconds running (100 Hz) | $on | $(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.3f", a/b}') |"
    echo
}

# verdict: the verdict's error rates on simulated runs (tests/loadgen/test_lg_verdict_sim.c: a
# TTL store or a leak under steady load seen through a Poisson-sampled profile, fixed seed).
# VERDICT_SCALE=N multiplies the number of cases (default 5: 30,000 runs, a few seconds).
bench_verdict() {
    echo "### verdict: outcomes on simulated runs (test_lg_verdict_sim --scale ${VERDICT_SCALE:-5} --table)"
    echo
    "$bin/test_lg_verdict_sim" --scale "${VERDICT_SCALE:-5}" --table 2>/dev/null || true
    echo
}

# share: the false alarms and misses of the CPU tests' share check (tests/profiler_cpu/
# share_bound.h) on simulated profiles, by effective sample count (test_share_sim, fixed seed).
bench_share() {
    echo "### share: the CPU tests' share check on simulated profiles (test_share_sim --table)"
    echo
    "$bin/test_share_sim" --table
    echo
}

# demo: scripts/demo.sh DEMO_RUNS times in a row (default 20) while stress-ng --cpu 2 keeps both
# cores busy (started here, bounded by --timeout, stopped by PID; DEMO_STRESS=0 leaves that to
# the caller), with DEMO_DURATION (default 60s) and DEMO_HEAPPROF_RATE (default 65536), and
# tallies leaky judged LEAK and fixed judged BOUNDED. DEMO_LOG=FILE keeps every verdict line.
bench_demo() {
    local runs=${DEMO_RUNS:-20} duration=${DEMO_DURATION:-60s} rate=${DEMO_HEAPPROF_RATE:-65536}
    local i leaky fixed leak=0 bounded=0 stress="" others=""
    if [ "${DEMO_STRESS:-1}" != 0 ]; then
        stress-ng --cpu 2 --timeout "$((runs * ($(lc_duration_s "$duration") + 60)))s" >/dev/null 2>&1 &
        stress=$!
        LC_PIDS="$LC_PIDS $stress"
    fi
    for i in $(seq "$runs"); do
        OUT="$LC_TMP/demo" BUILD_DIR="$build_dir" DURATION="$duration" HEAPPROF_RATE="$rate" \
            "$LC_ROOT/scripts/demo.sh" >"$LC_TMP/demo.log" 2>&1 || true
        leaky=$(sed -n 's/^leaky: verdict: \([A-Z]*\).*/\1/p' "$LC_TMP/demo.log")
        fixed=$(sed -n 's/^fixed: verdict: \([A-Z]*\).*/\1/p' "$LC_TMP/demo.log")
        [ "$leaky" = LEAK ] && leak=$((leak + 1))
        [ "$fixed" = BOUNDED ] && bounded=$((bounded + 1))
        [ "$leaky" = LEAK ] && [ "$fixed" = BOUNDED ] || others="$others run $i: leaky ${leaky:-none}, fixed ${fixed:-none};"
        echo "  demo run $i/$runs: leaky ${leaky:-none}, fixed ${fixed:-none}" >&2
        if [ -n "${DEMO_LOG:-}" ]; then
            { echo "# run $i"; grep -E '^(leaky|fixed): verdict:' "$LC_TMP/demo.log" || tail -3 "$LC_TMP/demo.log"; } >>"$DEMO_LOG"
        fi
    done
    if [ -n "$stress" ]; then
        kill "$stress" 2>/dev/null || true
        wait "$stress" 2>/dev/null || true
    fi
    echo "### demo: scripts/demo.sh $runs times, DURATION=$duration HEAPPROF_RATE=$rate$([ -n "$stress" ] && echo ", stress-ng --cpu 2 running")"
    echo
    echo "| runs | leaky LEAK | fixed BOUNDED | runs not right |"
    echo "|---:|---:|---:|---|"
    echo "| $runs | $leak | $bounded | ${others:-none} |"
    echo
}

# bench_fuzz: each fuzz target for FUZZ_SECONDS (default 300) in a libFuzzer build, one after
# the other (one core), with the load average at the start and the end.
bench_fuzz() {
    # shellcheck disable=SC2086
    lc_ensure_packages $LC_FUZZ_PACKAGES
    local dir="$build_dir-fuzz" seconds=${FUZZ_SECONDS:-300} status=0
    lc_build_fuzz "$dir" >/dev/null || lc_fail "cannot build the fuzz targets in $dir"
    echo "### fuzz: each target for ${seconds} s (libFuzzer + ASan + UBSan, clang $(clang -dumpversion))"
    echo
    echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    "$LC_ROOT/fuzz/run.sh" "$dir" "$seconds" || status=1
    echo
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    return "$status"
}

# lc_duration_s 10s -> 10 (whole seconds, for the durations this script takes)
lc_duration_s() { echo "${1%s}"; }

sections=("$@")
[ ${#sections[@]} -eq 0 ] && sections=(rss service profiler cpu malloc pprof fixed loadgen)
echo "## $(date -u +%Y-%m-%d) on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
for section in "${sections[@]}"; do
    case "$section" in
    service)
        rps_table "service: the store's cost" "bare_server (null store):bare_server:0" \
            "leaky (profiler off):leaky:0"
        ;;
    profiler)
        rps_table "profiler: its cost on leaky" "leaky, HEAPPROF_RATE=0:leaky:0" \
            "leaky, default rate (524288):leaky:524288"
        ;;
    rss) bench_rss ;;
    cpu) bench_cpu ;;
    malloc) "$LC_ROOT/bench/bench_malloc.sh" "$build_dir" "$((ROUNDS * 2 + 1))" ;;
    pprof)
        "$bin/bench_pprof" --runs 11
        "$LC_ROOT/bench/pprof_first.sh" "$bin" "$build_dir/lib" "$((ROUNDS * 2 - 1))"
        ;;
    serve) "$LC_ROOT/bench/serve_bench.sh" "$bin" "${BASE_BIN:-}" "$ROUNDS" ;;
    fixed) "$LC_ROOT/bench/fixed_bench.sh" "$bin" ;;
    loadgen) "$LC_ROOT/bench/loadgen_bench.sh" "$bin" ;;
    verdict) bench_verdict ;;
    share) bench_share ;;
    unwind)
        echo "### unwind: ns per stack walk of the signal handlers' unwinder, libunwind's cache off vs on"
        echo
        "$bin/bench_unwind" --rounds "$((ROUNDS * 2 + 1))"
        echo
        ;;
    demo) bench_demo ;;
    fuzz) bench_fuzz ;;
    contention) "$LC_ROOT/bench/contention_bench.sh" "$build_dir" ;;
    *) lc_fail "unknown section '$section' (have: rss service profiler cpu malloc pprof fixed loadgen contention verdict share unwind demo fuzz)" ;;
    esac
done

#!/usr/bin/env bash
# The busy program's CPU profile (cpu_hot_two does twice the work of cpu_hot_one) read by the
# real `go tool pprof`: it must parse it as a CPU profile without the binary's help, and the
# split of flat time it shows in -top must be the worker's: cpu_hot_two's share within 4
# binomial sigmas of the share its calls counted (about 4/5), on the profile's effective sample
# count, as the unit test judges it. (A rank check, two above one, has no error bound: on a busy
# machine the kernel signals a CPU timer far less often than every period, down to 9 effective
# samples of 150, and a 2:1 split inverted once in ten suite runs: 730 vs 770 ms.) The bound
# (share_bound.h) widens as the effective count falls; its false alarms and misses are measured
# by test_share_sim (BENCHMARKS.md).
# usage: cpu_pprof.sh BUILD_BIN_DIR
set -u
. "$(dirname "$0")/../lib.sh"
bin="$1/test_profiler_cpu"
[ -x "$bin" ] || lc_fail "no $bin"
command -v go >/dev/null || lc_fail "go is not installed (golang-go): scripts/test.sh installs it"
# go tool pprof writes caches and symbolization state under these: keep them in our temp dir.
export HOME="$LC_TMP/home" GOCACHE="$LC_TMP/gocache" GOPATH="$LC_TMP/gopath"
export PPROF_TMPDIR="$LC_TMP/pprof" GOTOOLCHAIN=local
mkdir -p "$HOME" "$PPROF_TMPDIR"

timeout 60 "$bin" --write "$LC_TMP/cpu.pb.gz" >"$LC_TMP/split" || lc_fail "the busy program failed"
cat "$LC_TMP/split"
# Profiles are symbolized in-process: pprof needs nothing but the file.
timeout 60 go tool pprof -top -unit=ms "$LC_TMP/cpu.pb.gz" >"$LC_TMP/top" 2>"$LC_TMP/top.err" ||
    lc_fail "go tool pprof -top failed: $(cat "$LC_TMP/top.err")"
cat "$LC_TMP/top"
grep -q '^Type: cpu$' "$LC_TMP/top" || lc_fail "pprof does not see a CPU profile"
grep -q '^Duration: ' "$LC_TMP/top" || lc_fail "pprof shows no duration"
# Flat time in ms (-unit=ms prints e.g. "770ms"); both must carry some, not only cumulative.
flat_ms() { awk -v f="$1" '$NF == f { sub(/ms$/, "", $1); print $1 }' "$LC_TMP/top"; }
two=$(flat_ms cpu_hot_two)
one=$(flat_ms cpu_hot_one)
for v in "$two" "$one"; do
    case "$v" in
    '' | 0 | *[!0-9.]*) lc_fail "pprof -top does not show flat time for both hot functions" ;;
    esac
done
# The hot samples' effective count is the profile's (samples^2 / sum of squared weights: a
# delivery weighted by overruns is one draw) scaled to their part of it.
split=$(awk -v two="$two" -v one="$one" '
    { share = $2; samples = $4; weight_sq = $6; period_ms = $8 }
    END {
        n = (two + one) / period_ms
        m = samples / weight_sq * n
        if (n < m) m = n
        got = two / (two + one)
        bound = 4 * sqrt(share * (1 - share) / m)
        printf "cpu_hot_two %gms vs cpu_hot_one %gms, share %.3f (want %.3f +- %.3f, %.0f effective samples)\n",
            two, one, got, share, bound, m
        exit (got - share > bound || share - got > bound)
    }' "$LC_TMP/split") || lc_fail "the split pprof shows is not the worker's: $split"
echo "$split"
# The callers: the hot functions are reached from busy_worker (pprof -peek).
timeout 60 go tool pprof -peek 'cpu_hot_two' "$LC_TMP/cpu.pb.gz" >"$LC_TMP/peek" 2>&1 ||
    lc_fail "go tool pprof -peek failed: $(cat "$LC_TMP/peek")"
grep -q 'busy_worker' "$LC_TMP/peek" || lc_fail "cpu_hot_two's caller busy_worker is missing"
echo "PASS: go tool pprof reads the CPU profile and shows the worker's split between the hot functions"

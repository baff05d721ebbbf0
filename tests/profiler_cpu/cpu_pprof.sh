#!/usr/bin/env bash
# The busy program's CPU profile (cpu_hot_two does twice the work of cpu_hot_one) read by the
# real `go tool pprof`: it must parse it as a CPU profile without the binary's help and list
# cpu_hot_two above cpu_hot_one in -top (flat order).
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

timeout 60 "$bin" --write "$LC_TMP/cpu.pb.gz" || lc_fail "the busy program failed"
# Profiles are symbolized in-process: pprof needs nothing but the file.
timeout 60 go tool pprof -top "$LC_TMP/cpu.pb.gz" >"$LC_TMP/top" 2>"$LC_TMP/top.err" ||
    lc_fail "go tool pprof -top failed: $(cat "$LC_TMP/top.err")"
cat "$LC_TMP/top"
grep -q '^Type: cpu$' "$LC_TMP/top" || lc_fail "pprof does not see a CPU profile"
grep -q '^Duration: ' "$LC_TMP/top" || lc_fail "pprof shows no duration"
two=$(grep -n ' cpu_hot_two$' "$LC_TMP/top" | cut -d: -f1)
one=$(grep -n ' cpu_hot_one$' "$LC_TMP/top" | cut -d: -f1)
[ -n "$two" ] && [ -n "$one" ] || lc_fail "pprof -top does not name both hot functions"
[ "$two" -lt "$one" ] || lc_fail "cpu_hot_one ranks above cpu_hot_two"
# Both must carry real flat time (not only cumulative).
for f in cpu_hot_two cpu_hot_one; do
    flat=$(awk -v f="$f" '$NF == f { print $1 }' "$LC_TMP/top")
    case "$flat" in
    0 | "") lc_fail "$f has no flat time in pprof -top" ;;
    esac
done
# The callers: the hot functions are reached from busy_worker (pprof -peek).
timeout 60 go tool pprof -peek 'cpu_hot_two' "$LC_TMP/cpu.pb.gz" >"$LC_TMP/peek" 2>&1 ||
    lc_fail "go tool pprof -peek failed: $(cat "$LC_TMP/peek")"
grep -q 'busy_worker' "$LC_TMP/peek" || lc_fail "cpu_hot_two's caller busy_worker is missing"
echo "PASS: go tool pprof reads the CPU profile and ranks cpu_hot_two above cpu_hot_one"

#!/bin/sh
# HEAPPROF_FILE / HEAPPROF_INTERVAL: numbered, complete, decodable files; never an overwrite;
# an unwritable directory or a bad interval is reported and does not crash the program; an
# interval below the floor (HEAPPROF_INTERVAL_MIN_NS, 1 s) is raised to it.
# usage: file_dumps.sh PROFILE_HELPER
set -eu
helper=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dir=$(mktemp -d /tmp/hprof-dumps-XXXXXX)
errf=$(mktemp /tmp/hprof-dumps-err-XXXXXX)
trap 'rm -rf "$dir" "$errf"' EXIT
fail() { echo "FAIL: $*" >&2; ls -la "$dir" >&2; exit 1; }

# 1. HEAPPROF_INTERVAL=1ms is raised to the floor, 1 s, with a message naming both; then
# 0000 .. 000N, all complete, no temp files. How many interval dumps fit in a given time
# depends on how fast the machine writes them (the first one loads the symbolizer), so the test
# does not fix the time: the helper runs until 2 interval dumps are there (a deadline of 30 s:
# a writer that never writes fails), then exits on SIGTERM, which writes the exit dump. The
# writer's schedule is fixed (dump k is due at k * 1 s), so it cannot write more than
# elapsed / 1 s of them: with the exit dump, n <= that + 1 (+ 1 for the time between our clock
# readings and the helper's). Without the floor, 1 ms wrote hundreds a second.
count_dumps() { ls "$dir" | grep -c '^p\.[0-9][0-9][0-9][0-9]\.pb\.gz$' || true; }
t0=$(date +%s%N)
HEAPPROF_FILE="$dir/p" HEAPPROF_INTERVAL=1ms "$helper" sleep 60000 2>"$errf" &
helper_pid=$!
waited=0
while [ "$(count_dumps)" -lt 2 ] && [ $waited -lt 600 ]; do
    sleep 0.05
    waited=$((waited + 1))
done
kill -TERM $helper_pid
wait $helper_pid || fail "helper exited $?"
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
floor_msg=$(cat "$errf")
echo "$floor_msg" | grep -Eq '^heapprof\[[0-9]+ [^]]+\]: HEAPPROF_INTERVAL=1ms is below the floor of 1s: writing every 1s$' ||
    fail "no message naming the value and the floor: $floor_msg"
n=$(count_dumps)
[ "$n" -ge 3 ] || fail "expected >= 3 dumps (2 interval dumps within 30 s, then the exit dump), got $n"
max=$((elapsed_ms / 1000 + 2))
[ "$n" -le $max ] || fail "expected <= $max dumps in $elapsed_ms ms at the 1 s floor, got $n"
i=0
while [ $i -lt "$n" ]; do
    f=$(printf '%s/p.%04d.pb.gz' "$dir" $i)
    [ -f "$f" ] || fail "missing $f (numbers must be consecutive from 0000)"
    i=$((i + 1))
done
[ -z "$(ls "$dir" | grep -v '^p\.[0-9]*\.pb\.gz$' || true)" ] || fail "stray files"
"$helper" check 6 "$dir"/p.*.pb.gz || fail "a dump does not decode"

# 2. A second run with the same prefix continues the numbering and overwrites nothing.
sum_before=$(cat "$dir"/p.0000.pb.gz | md5sum)
HEAPPROF_FILE="$dir/p" "$helper" sleep 10 || fail "second run exited $?"
m=$(ls "$dir" | grep -c '^p\.' || true)
[ "$m" -eq $((n + 1)) ] || fail "second run: expected $((n + 1)) files, got $m"
[ -f "$(printf '%s/p.%04d.pb.gz' "$dir" "$n")" ] || fail "second run did not take the next number"
[ "$(cat "$dir"/p.0000.pb.gz | md5sum)" = "$sum_before" ] || fail "p.0000 was overwritten"

# 3. A relative prefix is taken from the starting directory.
(cd "$dir" && HEAPPROF_FILE=rel "$helper" sleep 1) || fail "relative prefix run failed"
[ -f "$dir/rel.0000.pb.gz" ] || fail "relative prefix: no $dir/rel.0000.pb.gz"

# 4. An unwritable directory: exit status 0, one clear line on stderr, no crash.
HEAPPROF_FILE=/nonexistent-dir/p HEAPPROF_INTERVAL=1s "$helper" sleep 1300 2>"$dir/err" ||
    fail "unwritable dir: exit $?"
[ "$(grep -Ec '^heapprof\[[0-9]+ [^]]+\]: cannot write /nonexistent-dir/p.0000.pb.gz' "$dir/err")" -eq 1 ] ||
    fail "unwritable dir: expected one warning, got: $(cat "$dir/err")"
rm -f "$dir/err"

# 5. A bad interval: a warning, then the exit dump only.
HEAPPROF_FILE="$dir/bad" HEAPPROF_INTERVAL=soon "$helper" sleep 10 2>"$dir/err" ||
    fail "bad interval: exit $?"
grep -q 'HEAPPROF_INTERVAL=soon is not a positive duration' "$dir/err" || fail "no warning"
[ "$(ls "$dir" | grep -c '^bad\.')" -eq 1 ] || fail "bad interval: expected one dump"
rm -f "$dir/err"

# 6. A fork child's exit writes nothing; the parent's does.
HEAPPROF_FILE="$dir/fork" "$helper" fork-exit || fail "fork-exit failed"
[ "$(ls "$dir" | grep -c '^fork\.')" -eq 1 ] || fail "fork: expected exactly the parent's dump"
echo "ok: floor, $n dumps, numbering, relative prefix, unwritable dir, bad interval, fork"

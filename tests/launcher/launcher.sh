#!/usr/bin/env bash
# The heapprof launcher, as a user runs it:
#  1. the issue's reproducer, `bash -c 'sleep 1 & ls >/dev/null; wait'` with --http on port 0:
#     one listener only, and it is bash's (its line names bash's PID, its cmdline is bash's);
#     no profile from sleep or ls, and no HEAPPROF_*/LD_PRELOAD left in bash's children;
#  2. the same with --children: bash, sleep and ls each listen on a port of their own and write
#     PREFIX.PID.NNNN.pb.gz, and the summary counts the two children;
#  3. exit statuses: PROG's own, 128+N for a signal, SIGTERM forwarded to PROG, 127 for a
#     missing program, 125 for a bad flag; --help and --version;
#  4. the summary: a program that keeps 20000 KiB blocks at exit (rate 4096): the in-use total
#     within 10% of 19.53 MiB, hold_block on top with its file:line, and the profile named.
#  5. the peak: 5 MiB kept, 30 MiB more allocated on top and freed (rate 4096): the summary
#     says a peak within 10% of 35 MiB and in use at exit within 10% of 5 MiB.
# usage: launcher.sh HEAPPROF KEEP_AT_EXIT
set -u
. "$(dirname "$0")/../lib.sh"
HP=$1
KEEP=$2
command -v curl >/dev/null || lc_fail "curl is not installed"

# fenced DIR FLAGS...: the reproducer under the launcher, in the background; bash waits on a
# fifo (builtins only, so that the fence starts no process) until the test writes to it.
fenced() {
    local dir=$1
    shift
    mkdir -p "$dir"
    mkfifo "$dir/fifo"
    (cd "$dir" && exec "$HP" "$@" --http 127.0.0.1:0 -- bash -c \
        'echo $$ >"$1/bash.pid"; sleep 1 & ls >/dev/null; exec 3<>"$1/fifo"; read -t 20 -u 3 x; wait' \
        _ "$dir" >"$dir/out" 2>"$dir/err") &
    FENCED_PID=$!
    LC_PIDS="$LC_PIDS $FENCED_PID"
    local i
    for i in $(seq 200); do
        [ -s "$dir/bash.pid" ] && grep -q "^heapprof\[$(cat "$dir/bash.pid") bash\]: listening" \
            "$dir/err" && return 0
        kill -0 "$FENCED_PID" 2>/dev/null || lc_fail "heapprof exited early: $(cat "$dir/err")"
        sleep 0.1
    done
    lc_fail "bash under heapprof did not start listening: $(cat "$dir/err")"
}

# release DIR: open the fence and wait for the launcher; sets STATUS.
release() {
    echo go >"$1/fifo"
    STATUS=0
    wait "$FENCED_PID" || STATUS=$?
}

# --- 1. the reproducer: PROG only ----------------------------------------------------------
d=$LC_TMP/only
fenced "$d"
bash_pid=$(cat "$d/bash.pid")
url=$(sed -n "s#^heapprof\[$bash_pid bash\]: listening /debug \(http://127\.0\.0\.1:[0-9]*\)\$#\1#p" "$d/err")
[ -n "$url" ] || lc_fail "no listening line naming bash ($bash_pid): $(cat "$d/err")"
curl -s --max-time 5 "$url/debug/pprof/cmdline" | tr '\0' ' ' | grep -q '^bash -c ' ||
    lc_fail "the listener is not bash's: cmdline $(curl -s "$url/debug/pprof/cmdline" | tr '\0' ' ')"
release "$d"
[ "$STATUS" = 0 ] || lc_fail "the reproducer exited $STATUS: $(cat "$d/err")"
n=$(grep -c ': listening ' "$d/err")
[ "$n" = 1 ] || lc_fail "$n listening lines, want 1 (bash's only): $(cat "$d/err")"
grep -q "^heapprof\[$bash_pid bash\]: exited with status 0" "$d/err" ||
    lc_fail "no exit line for bash: $(cat "$d/err")"
others=$(ls "$d" | grep '\.pb\.gz$' | grep -v "^heapprof\.bash\.$bash_pid\.[0-9]*\.pb\.gz\$" || true)
[ -z "$others" ] || lc_fail "profiles of other processes: $others"
ls "$d" | grep -q "^heapprof\.bash\.$bash_pid\.0000\.pb\.gz\$" || lc_fail "no profile of bash in $d"
# What bash passes on: no trace of the profiler.
"$HP" -- bash -c 'env' >"$LC_TMP/env.out" 2>/dev/null || lc_fail "heapprof -- bash -c env failed"
if grep -E '^(HEAPPROF_|LD_PRELOAD=.*libheapprof)' "$LC_TMP/env.out"; then
    lc_fail "the profiler is still in the environment bash passes on"
fi
echo "ok: the reproducer: one listener, bash's ($url), one profile"

# --- 2. --children --------------------------------------------------------------------------
d=$LC_TMP/children
fenced "$d" --children --file "$d/p"
bash_pid=$(cat "$d/bash.pid")
release "$d"
[ "$STATUS" = 0 ] || lc_fail "--children exited $STATUS: $(cat "$d/err")"
grep ': listening ' "$d/err" | sed -n 's#^heapprof\[\([0-9]*\) \([a-z]*\)\]: listening /debug http://127\.0\.0\.1:\([0-9]*\)$#\1 \2 \3#p' |
    sort -k2 >"$LC_TMP/listeners"
[ "$(cut -d' ' -f2 "$LC_TMP/listeners" | tr '\n' ' ')" = "bash ls sleep " ] ||
    lc_fail "--children: want bash, ls and sleep listening, got: $(cat "$d/err")"
[ "$(cut -d' ' -f1 "$LC_TMP/listeners" | sort -u | wc -l)" = 3 ] || lc_fail "--children: PIDs repeat"
[ "$(cut -d' ' -f3 "$LC_TMP/listeners" | sort -u | wc -l)" = 3 ] || lc_fail "--children: ports repeat"
[ "$(awk '$2 == "bash" {print $1}' "$LC_TMP/listeners")" = "$bash_pid" ] || lc_fail "--children: bash's PID"
for comm in ls sleep; do
    pid=$(awk -v c=$comm '$2 == c {print $1}' "$LC_TMP/listeners")
    [ -s "$d/p.$pid.0000.pb.gz" ] || lc_fail "--children: no $d/p.$pid.0000.pb.gz for $comm"
done
[ -s "$d/p.0000.pb.gz" ] || lc_fail "--children: no profile of bash at $d/p.0000.pb.gz"
grep -q "^heapprof\[$bash_pid bash\]: child processes profiled: 2 " "$d/err" ||
    lc_fail "--children: the summary does not count 2 children: $(cat "$d/err")"
echo "ok: --children: $(tr '\n' ';' <"$LC_TMP/listeners")"

# --- 3. exit statuses -----------------------------------------------------------------------
cd "$LC_TMP" || lc_fail "cd $LC_TMP"
status() {
    local s=0
    "$HP" "$@" >/dev/null 2>"$LC_TMP/status.err" || s=$?
    echo "$s"
}
[ "$(status -- sh -c 'exit 7')" = 7 ] || lc_fail "exit 7 not passed through"
[ "$(status -- sh -c 'kill -KILL $$')" = 137 ] || lc_fail "SIGKILL is not 137"
grep -q 'killed by signal 9' "$LC_TMP/status.err" || lc_fail "no word of the signal: $(cat "$LC_TMP/status.err")"
[ "$(status -- /nonexistent/prog)" = 127 ] || lc_fail "a missing program is not 127"
grep -q '^heapprof: cannot run /nonexistent/prog: No such file' "$LC_TMP/status.err" ||
    lc_fail "no clear message for a missing program: $(cat "$LC_TMP/status.err")"
[ "$(status --rate lots -- true)" = 125 ] || lc_fail "a bad --rate is not 125"
grep -q '^heapprof: --rate: "lots" is not a number' "$LC_TMP/status.err" || lc_fail "bad --rate message"
[ "$(status --file "$LC_TMP/floor" --interval 10ms -- true)" = 125 ] ||
    lc_fail "an --interval below the floor is not 125"
grep -q '^heapprof: --interval: 10ms is below the floor of 1s$' "$LC_TMP/status.err" ||
    lc_fail "--interval below the floor: message $(cat "$LC_TMP/status.err")"
[ "$(status --bogus -- true)" = 125 ] || lc_fail "an unknown flag is not 125"
[ "$(status)" = 125 ] || lc_fail "no program is not 125"
[ "$(status --help)" = 0 ] || lc_fail "--help"
"$HP" --version | grep -Eq '^heapprof \(leakcase\) [0-9]+\.[0-9]+' || lc_fail "--version: $("$HP" --version)"
# SIGTERM to the launcher reaches PROG (a 30 s sleep), which dies of it: 143, promptly.
"$HP" -- sleep 30 >/dev/null 2>"$LC_TMP/term.err" &
hp=$!
LC_PIDS="$LC_PIDS $hp"
for i in $(seq 100); do pgrep -P "$hp" >/dev/null && break; sleep 0.05; done
kill -TERM "$hp"
s=0
wait "$hp" || s=$?
[ "$s" = 143 ] || lc_fail "SIGTERM to heapprof: exit $s, want 143: $(cat "$LC_TMP/term.err")"
echo "ok: exit statuses pass through (7, 137, 143), 125/127 for the launcher's own failures"

# --- 4. the summary -------------------------------------------------------------------------
s=0
"$HP" --rate 4096 --file "$LC_TMP/keep" -- "$KEEP" 20000 5 2>"$LC_TMP/keep.err" || s=$?
[ "$s" = 5 ] || lc_fail "keep_at_exit: exit $s, want 5: $(cat "$LC_TMP/keep.err")"
cat "$LC_TMP/keep.err"
tag="heapprof\[[0-9]* keep_at_exit\]"
read -r value unit < <(sed -n "s#^$tag: in use at exit: \([0-9.]*\) \([KMG]iB\) in [0-9]* objects.*#\1 \2#p" "$LC_TMP/keep.err")
[ "${unit:-}" = MiB ] || lc_fail "no in-use line in MiB in the summary"
awk -v v="$value" 'BEGIN { exit !(v > 19.53 * 0.9 && v < 19.53 * 1.1) }' ||
    lc_fail "in use at exit $value MiB, want 19.53 MiB within 10%"
grep -Eq "^$tag: top functions by in-use bytes:" "$LC_TMP/keep.err" || lc_fail "no top functions"
grep -Eq "^$tag: +[0-9.]+ MiB +(9[0-9]|100)\.[0-9]%  hold_block .*tests/launcher/keep_at_exit\.c:[0-9]+$" \
    "$LC_TMP/keep.err" || lc_fail "hold_block is not on top with its file:line"
grep -q "^heapprof\[[0-9]* keep_at_exit\]: exited with status 5; peak RSS [0-9.]* MiB" "$LC_TMP/keep.err" ||
    lc_fail "no exit line with the peak RSS"
grep -q "^heapprof\[[0-9]* keep_at_exit\]: profile: $LC_TMP/keep.0000.pb.gz$" "$LC_TMP/keep.err" ||
    lc_fail "the summary does not name $LC_TMP/keep.0000.pb.gz"
[ "$(head -c2 "$LC_TMP/keep.0000.pb.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ] || lc_fail "not a gzip'd profile"
echo "ok: the summary reports $value MiB in use, hold_block on top"

# --- 5. the peak ----------------------------------------------------------------------------
# 5120 KiB blocks kept, then 30720 more on top of them, freed before exit (rate 4096): the
# summary's peak within 10% of 35 MiB, its in-use at exit within 10% of 5 MiB.
s=0
"$HP" --rate 4096 --file "$LC_TMP/peak" -- "$KEEP" 5120 0 30720 2>"$LC_TMP/peak.err" || s=$?
[ "$s" = 0 ] || lc_fail "keep_at_exit 5120 0 30720: exit $s, want 0: $(cat "$LC_TMP/peak.err")"
cat "$LC_TMP/peak.err"
read -r inuse iunit peak punit < <(sed -n "s#^$tag: in use at exit: \([0-9.]*\) \([KMG]iB\) in [0-9]* objects; peak \([0-9.]*\) \([KMG]iB\) (estimated.*#\1 \2 \3 \4#p" "$LC_TMP/peak.err")
[ "${iunit:-}" = MiB ] && [ "${punit:-}" = MiB ] || lc_fail "no in-use and peak line in MiB in the summary"
awk -v v="$inuse" 'BEGIN { exit !(v > 5 * 0.9 && v < 5 * 1.1) }' ||
    lc_fail "in use at exit $inuse MiB, want 5 MiB within 10%"
awk -v v="$peak" 'BEGIN { exit !(v > 35 * 0.9 && v < 35 * 1.1) }' ||
    lc_fail "peak $peak MiB, want 35 MiB within 10%"
grep -q "^heapprof\[[0-9]* keep_at_exit\]: exited with status 0; peak RSS [0-9.]* MiB" "$LC_TMP/peak.err" ||
    lc_fail "no exit line with the peak RSS"
echo "ok: the summary reports $inuse MiB in use at exit and a peak of $peak MiB"

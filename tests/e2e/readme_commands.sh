#!/usr/bin/env bash
# Every command of the README works as written: runs each ```sh block of README.md, in order,
# in one bash session (set -e: a failing command fails the test), from a scratch directory whose
# build/ is the build under test. Blocks preceded by "<!-- readme-test: skip (why) -->" are the
# set-up commands that CI runs itself (scripts/test.sh builds and tests; tests/e2e/demo.sh runs
# the demo). The README uses the servers' default ports, 8080 and 6060, and 8081 for pprof's web
# UI: in a network namespace of its own where it can be had, else it stops at once if any of
# them is taken. Whatever the README starts in the
# background is killed by PID when the session ends.
# usage: readme_commands.sh SOURCE_DIR BUILD_DIR
set -u
. "$(dirname "$0")/../lib.sh"
src=$1
build=$2

# The README's ports are fixed, and several suites (or a developer's own leaky) may run at once
# on one machine. Where it can (as root, as CI runs), the session gets a network namespace of
# its own (unshare --net), whose loopback has every port free; elsewhere the ports must be free.
netns=()
if unshare --net ip link set lo up 2>/dev/null; then
    netns=(unshare --net sh -c 'ip link set lo up && exec "$0" "$@"')
else
    for port in 8080 6060 8081; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            lc_fail "port $port is taken: the README's commands use it"
        fi
    done
fi

# Extract the runnable blocks.
awk '
    /^<!-- readme-test: skip/ { skip = 1; next }
    /^```sh$/ { if (!skip) { inblock = 1; printf "# --- README block %d\n", ++n } ; skip = 0; next }
    /^```/ { inblock = 0; skip = 0; next }
    inblock { print }
    !inblock && NF { skip = 0 }
' "$src/README.md" >"$LC_TMP/blocks.sh"
blocks=$(grep -c '^# --- README block' "$LC_TMP/blocks.sh")
[ "$blocks" -ge 8 ] || lc_fail "found only $blocks runnable blocks in README.md"

work="$LC_TMP/work"
mkdir -p "$work"
ln -s "$build" "$work/build"
{
    echo 'set -e'
    # A sanitizer build installs instrumented libraries: the README's `cc` gets the same
    # -fsanitize, as a user of such a build would need (tests/install does the same).
    [ -n "${LEAKCASE_SANITIZE:-}" ] && echo "cc() { command cc -fsanitize=$LEAKCASE_SANITIZE \"\$@\"; }"
    echo 'trap '\''kill $(jobs -p) 2>/dev/null || true'\'' EXIT'
    cat "$LC_TMP/blocks.sh"
} >"$LC_TMP/session.sh"

export HOME="$LC_TMP/home" GOCACHE="$LC_TMP/gocache" PPROF_TMPDIR="$LC_TMP/pprof"
mkdir -p "$HOME"
if ! (cd "$work" && timeout 300 "${netns[@]}" bash "$LC_TMP/session.sh" >"$LC_TMP/out" 2>&1); then
    tail -n 40 "$LC_TMP/out" >&2
    lc_fail "a README command failed (above: the end of the session's output)"
fi

# What the walk-through promises a reader sees.
grep -q '^verdict: LEAK' "$LC_TMP/out" ||
    lc_fail "the leaky walk-through did not end in LEAK: $(grep '^verdict:' "$LC_TMP/out")"
grep -q '^verdict: BOUNDED' "$LC_TMP/out" ||
    lc_fail "the fixed walk-through did not end BOUNDED: $(grep '^verdict:' "$LC_TMP/out")
its profiles.csv (loadgen verdict re-judges it):
$(cat "$work/run-fixed/profiles.csv")"
grep -Eq '^ +[0-9.]+[kMG]?B .* store_put$' "$LC_TMP/out" || lc_fail "pprof -top does not show store_put"
grep -q 'leaky: stopped after .* requests; the store held' "$LC_TMP/out" ||
    lc_fail "leaky did not exit cleanly"
[ -s "$work/inuse.png" ] || lc_fail "loadgen plot wrote no inuse.png"
[ -s "$work/sort-heap.0000.pb.gz" ] || lc_fail "the LD_PRELOAD example wrote no profile"
echo "PASS readme_commands ($blocks blocks)"

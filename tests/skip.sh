# tests/skip.sh: lc_skip MESSAGE, for a shell test that cannot run because a tool it needs (go,
# prometheus, curl) is missing. Outside CI it exits 77, which ctest reports as skipped
# (SKIP_RETURN_CODE 77) and scripts/test.sh counts. Under CI=true (.ci/run sets it) scripts/test.sh
# has installed every tool, so a missing one is a broken install that a skip would hide: the
# test fails (exit 1) instead. POSIX sh: sourced by sh and bash scripts alike.
lc_skip() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL: $* (CI=true: a test that cannot run fails instead of being skipped)" >&2
        exit 1
    fi
    echo "SKIP: $*"
    exit 77
}

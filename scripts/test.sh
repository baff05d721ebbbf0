#!/usr/bin/env bash
# scripts/test.sh: every test, from a fresh Debian machine. Installs what is missing, builds with
# -Werror, runs ctest (unit tests, integration tests against the real servers on 127.0.0.1,
# go tool pprof and Prometheus as the real clients), then the same suite in sanitizer builds.
# CI (.ci/run) calls exactly this.
#   scripts/test.sh [--repeat N]   --repeat N: run each test up to N times, stopping at its
#                                  first failure (ctest --repeat until-fail:N): a flake shows
#   BUILD_DIR=...                  main build (default: build/)
#   FUZZ_SECONDS=15                each fuzz target (fuzz/) fuzzed this long, from its committed
#                                  corpus, after ctest replays the corpora and regression inputs
#                                  in a libFuzzer build (BUILD_DIR-fuzz); 0 skips the fuzzing
#   SANITIZERS="address undefined thread"
#                                  sanitizer builds to test too, in BUILD_DIR-SANITIZER (ASan and
#                                  TSan builds leave the malloc interposer out; "" skips them)
#   CI=true                        a test that cannot run (its tool missing) fails instead of
#                                  being skipped (tests/skip.sh); .ci/run sets it
# At the end it prints how many tests ran and how many were skipped, per build and in all.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

repeat=1
while [ $# -gt 0 ]; do
    case $1 in
    --repeat)
        [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || {
            echo "test.sh: --repeat needs a positive count" >&2
            exit 2
        }
        repeat=$2
        shift 2
        ;;
    -h | --help)
        sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "test.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
done
repeat_note=""
[ "$repeat" -gt 1 ] && repeat_note=" (each test up to $repeat times, until it fails)"

# shellcheck disable=SC2086 # the package lists are word lists
lc_ensure_packages $LC_BUILD_PACKAGES $LC_TEST_PACKAGES $LC_FUZZ_PACKAGES
build_dir=${BUILD_DIR:-$LC_ROOT/build}
sanitizers=${SANITIZERS-address undefined thread}
summary=""
total_skipped=0

# run_ctest DIR: the suite in DIR, its log kept in DIR/ctest.log; adds its counts to the summary.
run_ctest() {
    local dir=$1 log="$1/ctest.log" status=0
    echo "==> ctest in $dir$repeat_note"
    (cd "$dir" && ctest --output-on-failure -j 2 --timeout 600 --repeat "until-fail:$repeat") 2>&1 |
        tee "$log" || status=$?
    # ctest marks a test that exited with its SKIP_RETURN_CODE "***Skipped" (once per run of it).
    local ran skipped
    ran=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#' "$log" || true)
    skipped=$(grep -c '\*\*\*Skipped' "$log" || true)
    summary+="    $dir: $ran test runs, $skipped skipped"$'\n'
    total_skipped=$((total_skipped + skipped))
    if [ "$skipped" -gt 0 ]; then
        echo "==> $skipped test(s) skipped in $dir:"
        grep '\*\*\*Skipped' "$log" | sed 's/^/    /'
    fi
    return "$status"
}

# A build whose tests fail does not stop the others: every build's results are shown, and the
# script fails at the end.
failed=""
lc_build "$build_dir"
run_ctest "$build_dir" || failed+=" $build_dir"

for sanitizer in $sanitizers; do
    dir="$build_dir-$sanitizer"
    echo "==> building with -fsanitize=$sanitizer in $dir"
    cmake -S "$LC_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLEAKCASE_WERROR=ON \
        -DLEAKCASE_SANITIZE="$sanitizer" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
    run_ctest "$dir" || failed+=" $dir"
done
# Fuzzing: the targets built with libFuzzer; ctest replays the committed inputs there too, then
# each target fuzzes for FUZZ_SECONDS (7 targets: under 2 minutes at the default).
fuzz_seconds=${FUZZ_SECONDS:-15}
fuzz_dir="$build_dir-fuzz"
if lc_build_fuzz "$fuzz_dir"; then
    echo "==> replaying the fuzz corpora and regression inputs in $fuzz_dir"
    (cd "$fuzz_dir" && ctest --output-on-failure -j 2 -L fuzz) || failed+=" $fuzz_dir"
    if [ "$fuzz_seconds" != 0 ]; then
        echo "==> fuzzing each target for ${fuzz_seconds}s"
        "$LC_ROOT/fuzz/run.sh" "$fuzz_dir" "$fuzz_seconds" || failed+=" $fuzz_dir(fuzzing)"
    fi
else
    failed+=" $fuzz_dir(build)"
fi
printf '==> summary\n%s' "$summary"
if [ -n "$failed" ]; then
    echo "==> tests FAILED in:$failed; $total_skipped skipped"
    exit 1
fi
echo "==> all tests passed; $total_skipped skipped"

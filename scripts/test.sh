#!/usr/bin/env bash
# scripts/test.sh: every test, from a fresh Debian machine. Installs what is missing, builds with
# -Werror, runs ctest (unit tests, integration tests against the real servers on 127.0.0.1,
# go tool pprof and Prometheus as the real clients), then the same suite in sanitizer builds.
# CI (.ci/run) calls exactly this.
#   BUILD_DIR=...                  main build (default: build/)
#   SANITIZERS="address undefined" sanitizer builds to test too, in BUILD_DIR-SANITIZER
#                                  (ASan builds leave the malloc interposer out; "" skips them)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2086 # the package lists are word lists
lc_ensure_packages $LC_BUILD_PACKAGES $LC_TEST_PACKAGES
build_dir=${BUILD_DIR:-$LC_ROOT/build}
sanitizers=${SANITIZERS-address undefined}

lc_build "$build_dir"
echo "==> ctest in $build_dir"
(cd "$build_dir" && ctest --output-on-failure -j 2 --timeout 600)

for sanitizer in $sanitizers; do
    dir="$build_dir-$sanitizer"
    echo "==> building with -fsanitize=$sanitizer in $dir"
    cmake -S "$LC_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLEAKCASE_WERROR=ON \
        -DLEAKCASE_SANITIZE="$sanitizer" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
    echo "==> ctest in $dir"
    (cd "$dir" && ctest --output-on-failure -j 2 --timeout 600)
done
echo "==> all tests passed"

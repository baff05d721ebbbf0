#!/usr/bin/env bash
# scripts/test.sh: every test, from a fresh Debian machine. Installs what is missing, builds with
# -Werror, runs ctest (unit tests, integration tests against the real servers on 127.0.0.1,
# go tool pprof as the real client, sanitizer builds). CI (.ci/run) calls exactly this.
#   BUILD_DIR=... to build elsewhere (default: build/)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2086 # the package lists are word lists
lc_ensure_packages $LC_BUILD_PACKAGES $LC_TEST_PACKAGES
build_dir=${BUILD_DIR:-$LC_ROOT/build}
lc_build "$build_dir"
cd "$build_dir"
ctest --output-on-failure -j 2 --timeout 600

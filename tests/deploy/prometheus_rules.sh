#!/usr/bin/env bash
# deploy/prometheus/leak-rules.yml: promtool checks it and runs its unit tests
# (leak-rules.test.yml: the alert fires for a steady leak, not for a sawtooth, not for a young
# process, and not before its hour of `for:`). Skipped (77) only without promtool (Debian
# package prometheus, which scripts/test.sh installs).
# usage: prometheus_rules.sh SOURCE_DIR
set -u
dir=$1/deploy/prometheus
command -v promtool >/dev/null || { echo "SKIP: promtool (Debian package prometheus) is not installed"; exit 77; }
promtool check rules "$dir/leak-rules.yml" || { echo "FAIL: promtool check rules"; exit 1; }
cd "$dir" && promtool test rules leak-rules.test.yml || { echo "FAIL: promtool test rules"; exit 1; }

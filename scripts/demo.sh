#!/usr/bin/env bash
# scripts/demo.sh: the case study from a fresh machine. Installs what is missing, builds, then
# runs leaky under a short steady load and shows its memory growing with every request.
#   DURATION=10s CONNECTIONS=16 scripts/demo.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2086
lc_ensure_packages $LC_BUILD_PACKAGES curl wrk procps
build_dir=${BUILD_DIR:-$LC_ROOT/build}
lc_build "$build_dir" >/dev/null || { echo "demo: the build failed" >&2; exit 1; }
. "$LC_ROOT/tests/lib.sh" # lc_start_server / lc_stop_server: port 0, cleanup by PID
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

echo "==> starting leaky (a service whose cache never forgets)"
lc_start_server LEAKY "$build_dir/bin/leaky" --threads 1
echo "    $LEAKY_URL/process"
before=$(rss_kib "$LEAKY_PID")
echo "==> $DURATION of load: wrk -t1 -c$CONNECTIONS; RSS every second"
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$LEAKY_URL/process" >"$LC_TMP/wrk" &
wrk_pid=$!
LC_PIDS="$LC_PIDS $wrk_pid"
while kill -0 "$wrk_pid" 2>/dev/null; do
    printf '    RSS %8d KiB\n' "$(rss_kib "$LEAKY_PID")"
    sleep 1
done
wait "$wrk_pid" || { echo "demo: wrk failed" >&2; exit 1; }
after=$(rss_kib "$LEAKY_PID")
lc_stop_server LEAKY
[ "$LEAKY_STATUS" = 0 ] || { echo "demo: leaky exited $LEAKY_STATUS" >&2; exit 1; }
requests=$(sed -n 's/.*stopped after \([0-9]*\) requests.*/\1/p' "$LEAKY_ERR")
[ -n "$requests" ] && [ "$requests" -gt 0 ] || { echo "demo: no requests were served" >&2; exit 1; }
echo "==> $(cat "$LEAKY_ERR")"
echo "==> RSS grew from $before KiB to $after KiB over $requests requests:" \
    "$(((after - before) * 1024 / requests)) bytes per request, and none of it comes back."

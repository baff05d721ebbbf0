# tests/lib.sh: shell helpers for integration tests. Source it; then
#   lc_start_server NAME BIN [ARGS...]   start BIN on port 0 (loopback), wait for its two
#                                        "listening ..." lines; sets NAME_PID, NAME_URL (the
#                                        /process base URL), NAME_DEBUG_URL, NAME_ERR (stderr file)
#   lc_stop_server NAME                  SIGTERM by PID, wait; sets NAME_STATUS to the exit status
#   lc_fail MESSAGE                      print and exit 1; the scratch directory is kept (its
#                                        path is printed), so a flake leaves its evidence
#   lc_skip MESSAGE                      exit 77 (skipped), or fail under CI=true (tests/skip.sh)
# Every server started here is killed by PID when the script exits, whatever happens.
# Everything talks to 127.0.0.1 only and every wait is bounded.

. "$(dirname "${BASH_SOURCE[0]}")/skip.sh"
set -u
LC_TMP=$(mktemp -d "${TMPDIR:-/tmp}/leakcase-test.XXXXXX")
LC_PIDS=""
LC_KEEP_TMP=""

lc_cleanup() {
    for pid in $LC_PIDS; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    [ -n "$LC_KEEP_TMP" ] || rm -rf "$LC_TMP"
}
trap lc_cleanup EXIT

lc_fail() {
    echo "FAIL: $*" >&2
    LC_KEEP_TMP=1
    echo "(the test's files are kept in $LC_TMP)" >&2
    exit 1
}

lc_start_server() {
    local name=$1 bin=$2
    shift 2
    local out="$LC_TMP/$name.out" err="$LC_TMP/$name.err"
    "$bin" --listen 127.0.0.1:0 --debug-listen 127.0.0.1:0 "$@" >"$out" 2>"$err" &
    local pid=$!
    LC_PIDS="$LC_PIDS $pid"
    local i
    for i in $(seq 100); do # up to 10 s
        if [ "$(grep -c '^listening ' "$out" 2>/dev/null)" = 2 ]; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || lc_fail "$name exited at start: $(cat "$err")"
        sleep 0.1
    done
    local url debug_url
    url=$(sed -n 's#^listening /process \(http://.*\)$#\1#p' "$out")
    debug_url=$(sed -n 's#^listening /debug \(http://.*\)$#\1#p' "$out")
    [ -n "$url" ] && [ -n "$debug_url" ] || lc_fail "$name did not print its listening lines"
    printf -v "${name}_PID" '%s' "$pid"
    printf -v "${name}_URL" '%s' "$url"
    printf -v "${name}_DEBUG_URL" '%s' "$debug_url"
    printf -v "${name}_ERR" '%s' "$err"
}

lc_stop_server() {
    local name=$1 pid_var="${1}_PID"
    local pid=${!pid_var} status i
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do # up to 10 s
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && lc_fail "$name did not exit within 10 s of SIGTERM"
    status=0
    wait "$pid" || status=$?
    printf -v "${name}_STATUS" '%s' "$status"
}

# lc_status URL [CURL ARGS...]: print the HTTP status code of one request.
lc_status() {
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url"
}

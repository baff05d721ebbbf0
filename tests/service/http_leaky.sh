#!/usr/bin/env bash
# Integration test of the /process service contract, against the real leaky binary on port 0:
# flags, every status a client can provoke, idle timeout, port in use, clean SIGTERM, and that
# N requests leave exactly N entries in the store.
# usage: http_leaky.sh BUILD_BIN_DIR
set -u
. "$(dirname "$0")/../lib.sh"
bin="$1/leaky"
[ -x "$bin" ] || lc_fail "no $bin"

# --- flags --------------------------------------------------------------------------------
"$bin" --help >"$LC_TMP/help" 2>&1 || lc_fail "--help exits non-zero"
grep -q -- '--entry-bytes' "$LC_TMP/help" || lc_fail "--help does not list --entry-bytes"
for bad in "--bogus" "--entry-bytes 0" "--entry-bytes abc" "--threads 0" "--threads 9999" \
    "--listen nope" "--listen 127.0.0.1:99999" "--debug-listen :80" "--idle-timeout 0" \
    "--ttl 1s" "extra-argument" "--listen"; do
    # shellcheck disable=SC2086 # word splitting is the point: each entry is a command line
    "$bin" $bad >"$LC_TMP/out" 2>"$LC_TMP/err"
    status=$?
    [ "$status" = 2 ] || lc_fail "'leaky $bad' exited $status, want 2"
    grep -q '^usage: leaky' "$LC_TMP/err" || lc_fail "'leaky $bad' printed no usage on stderr"
    [ -s "$LC_TMP/out" ] && lc_fail "'leaky $bad' printed on stdout"
done

# --- statuses -----------------------------------------------------------------------------
lc_start_server S "$bin" --threads 2 --idle-timeout 1s
u="$S_URL"
requests=0
body=$(curl -s --max-time 5 "$u/process") || lc_fail "GET /process failed"
requests=$((requests + 1))
[ "$body" = "processed request 1" ] || lc_fail "GET /process answered '$body'"
[ "$(lc_status "$u/process" -X POST --data 'x=1')" = 200 ] || lc_fail "POST /process not 200"
requests=$((requests + 1))
[ "$(lc_status "$u/process?user=7")" = 200 ] || lc_fail "GET /process?query not 200"
requests=$((requests + 1))
for method in PUT DELETE PATCH OPTIONS; do
    [ "$(lc_status "$u/process" -X "$method")" = 405 ] || lc_fail "$method /process not 405"
done
curl -s -i --max-time 5 -X PUT "$u/process" | grep -qi '^Allow: GET, POST' ||
    lc_fail "405 without an Allow header"
[ "$(lc_status "$u/")" = 404 ] || lc_fail "GET / not 404"
[ "$(lc_status "$u/process/extra")" = 404 ] || lc_fail "GET /process/extra not 404"
[ "$(lc_status "$u/nope" -X DELETE)" = 404 ] || lc_fail "DELETE /nope not 404"

head -c 65536 /dev/zero >"$LC_TMP/body64k"
head -c 65537 /dev/zero >"$LC_TMP/body64k1"
[ "$(lc_status "$u/process" --data-binary @"$LC_TMP/body64k")" = 200 ] ||
    lc_fail "a 64 KiB body was refused"
requests=$((requests + 1))
[ "$(lc_status "$u/process" --data-binary @"$LC_TMP/body64k1")" = 413 ] ||
    lc_fail "a body over 64 KiB was not 413"
big_header=$(head -c 9000 /dev/zero | tr '\0' a)
status=$(lc_status "$u/process" -H "X-Big: $big_header")
[ "$status" = 400 ] || [ "$status" = 431 ] || lc_fail "headers over 8 KiB got $status"

# A request line that is not HTTP gets 400, and the server lives on.
exec 3<>"/dev/tcp/127.0.0.1/${u##*:}"
printf 'GARBAGE\r\n\r\n' >&3
reply=$(timeout 3 head -n 1 <&3)
exec 3<&-
case "$reply" in "HTTP/1.1 400"*) ;; *) lc_fail "garbage request answered '$reply'" ;; esac

# The debug listener is a separate port, answering 404 on paths it does not serve.
[ "$(lc_status "$S_DEBUG_URL/nope")" = 404 ] || lc_fail "debug listener: /nope not 404"
[ "$(lc_status "$S_DEBUG_URL/process")" = 404 ] || lc_fail "debug listener serves /process"

# --- idle connections are closed (--idle-timeout 1s) --------------------------------------
exec 3<>"/dev/tcp/127.0.0.1/${u##*:}"
start=$(date +%s%N)
timeout 5 cat <&3 >/dev/null
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
exec 3<&-
[ "$elapsed_ms" -ge 500 ] && [ "$elapsed_ms" -lt 4000 ] ||
    lc_fail "idle connection closed after ${elapsed_ms} ms, want about 1000"

# --- a port in use is a clear error, exit 1 -----------------------------------------------
"$bin" --listen "127.0.0.1:${u##*:}" --debug-listen 127.0.0.1:0 >/dev/null 2>"$LC_TMP/inuse"
status=$?
[ "$status" = 1 ] || lc_fail "a second leaky on a port in use exited $status, want 1"
grep -q 'Address already in use' "$LC_TMP/inuse" || lc_fail "no clear message: $(cat "$LC_TMP/inuse")"

# --- N requests hold N entries ------------------------------------------------------------
n=300
urls=()
for _ in $(seq $n); do urls+=("$u/process"); done
curl -s --max-time 30 "${urls[@]}" >"$LC_TMP/bodies" || lc_fail "keep-alive batch failed"
[ "$(grep -c '^processed request ' "$LC_TMP/bodies")" = $n ] || lc_fail "batch: not $n replies"
requests=$((requests + n))
[ "$(sort -u "$LC_TMP/bodies" | wc -l)" = $n ] || lc_fail "request ids are not unique"

lc_stop_server S
[ "$S_STATUS" = 0 ] || lc_fail "SIGTERM: exit status $S_STATUS, want 0"
grep -q "stopped after $requests requests; the store held $requests entries" "$S_ERR" ||
    lc_fail "want $requests entries held; server said: $(cat "$S_ERR")"

# SIGINT stops it cleanly too.
lc_start_server T "$bin" --threads 1
kill -INT "$T_PID"
for _ in $(seq 50); do kill -0 "$T_PID" 2>/dev/null || break; sleep 0.1; done
wait "$T_PID"
status=$?
[ "$status" = 0 ] || lc_fail "SIGINT: exit status $status, want 0"
echo "PASS http_leaky ($requests requests)"

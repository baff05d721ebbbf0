#!/bin/sh
# End to end: two heap profiles of a running leaky under load; `go tool pprof -base` names the
# store's insert (store_put in leaky/store.c) as the growth, and -list shows its malloc line.
# usage: pprof_leaky.sh LEAKY   (exit 77 = skipped: no Go toolchain or curl)
set -eu
leaky=$1
. "$(dirname "$0")/../skip.sh"
command -v go >/dev/null 2>&1 || lc_skip "go (Debian golang-go) is not installed"
command -v curl >/dev/null 2>&1 || lc_skip "curl is not installed"
dir=$(mktemp -d /tmp/hprof-leaky-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
export HOME="$dir/home" GOCACHE="$dir/gocache" GOPATH="$dir/gopath" PPROF_TMPDIR="$dir/pprof"
mkdir -p "$HOME"
cd "$dir"
fail() { echo "FAIL: $*" >&2; exit 1; }

: >"$dir/out" # exists before the first poll below, so grep -c always prints a number
HEAPPROF_RATE=4096 "$leaky" --listen 127.0.0.1:0 --debug-listen 127.0.0.1:0 --threads 2 \
    >"$dir/out" 2>"$dir/err" &
pid=$!
i=0
while [ "$(grep -c '^listening' "$dir/out" 2>/dev/null || true)" -lt 2 ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "leaky did not start: $(cat "$dir/err")"
    kill -0 "$pid" 2>/dev/null || fail "leaky exited: $(cat "$dir/err")"
    sleep 0.1
done
proc=$(sed -n 's|^listening /process http://||p' "$dir/out")
debug=$(sed -n 's|^listening /debug http://||p' "$dir/out")
case "$proc$debug" in 127.0.0.1:*127.0.0.1:*) ;; *) fail "unexpected listeners: $(cat "$dir/out")" ;; esac

load() { # load N: N requests to /process, a few connections' worth of keep-alive each
    n=$1
    urls=
    j=0
    while [ $j -lt 100 ]; do urls="$urls http://$proc/process"; j=$((j + 1)); done
    k=0
    while [ $k -lt "$n" ]; do
        # shellcheck disable=SC2086
        curl -sf --max-time 10 $urls >/dev/null || fail "curl /process failed"
        k=$((k + 100))
    done
}
load 500
curl -sf --max-time 30 -D "$dir/h1" -o "$dir/heap1.pb.gz" "http://$debug/debug/pprof/heap" ||
    fail "GET /debug/pprof/heap"
grep -qi '^Content-Type: application/octet-stream' "$dir/h1" || fail "content type: $(cat "$dir/h1")"
grep -qi '^Content-Disposition: attachment; filename="heap"' "$dir/h1" || fail "disposition"
load 3000
curl -sf --max-time 30 -o "$dir/heap2.pb.gz" "http://$debug/debug/pprof/heap" || fail "GET heap 2"
curl -sf --max-time 30 -o "$dir/allocs.pb.gz" "http://$debug/debug/pprof/allocs" || fail "GET allocs"
code=$(curl -s --max-time 10 -o "$dir/e" -w '%{http_code}' "http://$debug/debug/pprof/heap?seconds=abc")
[ "$code" = 400 ] || fail "?seconds=abc: status $code"
kill "$pid"
wait "$pid" || fail "leaky did not exit 0 on SIGTERM"
pid=

go tool pprof -top -base heap1.pb.gz heap2.pb.gz >"$dir/base" 2>"$dir/pp_err" || {
    cat "$dir/pp_err" >&2
    fail "go tool pprof -base"
}
# The first function under the header is the growth, and it is store_put.
first=$(sed -n '/flat%/{n;p;q}' "$dir/base")
echo "$first" | grep -q ' store_put$' || { cat "$dir/base" >&2; fail "top of -base is not store_put"; }
go tool pprof -list store_put -base heap1.pb.gz heap2.pb.gz >"$dir/list" 2>/dev/null ||
    fail "-list store_put"
grep -q 'ROUTINE .* store_put in .*leaky/store.c' "$dir/list" || { cat "$dir/list" >&2; fail "-list"; }
grep -Eq '^ +[0-9.]+[kM]B +[0-9.]+[kM]B +[0-9]+: .*malloc' "$dir/list" ||
    { cat "$dir/list" >&2; fail "-list does not charge a malloc line"; }
go tool pprof -traces allocs.pb.gz 2>/dev/null | grep -q 'handle_process' || fail "-traces allocs"
go tool pprof -symbolize=none -raw heap2.pb.gz 2>/dev/null | grep -Eq 'store_put .*leaky/store\.c:[0-9]+' ||
    fail "-symbolize=none: store_put has no file:line of its own"
echo "ok: pprof -base names store_put; -list charges its malloc line"
sed -n '1,12p' "$dir/base"

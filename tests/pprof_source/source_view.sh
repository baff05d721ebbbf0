#!/usr/bin/env bash
# pprof's annotated source, as a user opens it: a heap profile from a live leaky, the standalone
# pprof (built offline from Debian's golang-github-google-pprof-dev by scripts/lib.sh lc_pprof)
# serving -http on 127.0.0.1, and its Source page for store_put (/ui/source?f=store_put,
# fetched with curl): leaky/store.c with the malloc line of store_put and its in-use bytes.
# (Go 1.19's bundled `go tool pprof` renders that page empty for our binaries; see README.)
# Skipped (77) only when Go or the pprof sources are not installed (scripts/test.sh installs them).
# usage: source_view.sh SOURCE_DIR LEAKY LOADGEN TOOLS_DIR
set -u
. "$(dirname "$0")/../lib.sh"
SRC=$1
LEAKY=$2
LOADGEN=$3
TOOLS=$4
command -v go >/dev/null || { echo "SKIP: go (Debian golang-go) is not installed"; exit 77; }
[ -d /usr/share/gocode/src/github.com/google/pprof ] ||
    { echo "SKIP: Debian golang-github-google-pprof-dev is not installed"; exit 77; }
. "$SRC/scripts/lib.sh"
pprof=$(lc_pprof "$TOOLS") || lc_fail "cannot build the standalone pprof"

HEAPPROF_RATE=4096 lc_start_server S "$LEAKY" --threads 1
"$LOADGEN" --url "$S_URL/process" --rate 1000 --duration 2s >/dev/null 2>&1 || lc_fail "loadgen failed"
curl -s --max-time 20 -o "$LC_TMP/heap.pb.gz" "$S_DEBUG_URL/debug/pprof/heap" || lc_fail "no heap profile"
lc_stop_server S

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export HOME=$LC_TMP PPROF_TMPDIR=$LC_TMP
(cd "$SRC" && exec "$pprof" -no_browser -http="127.0.0.1:$port" "$LC_TMP/heap.pb.gz") \
    >"$LC_TMP/pprof.log" 2>&1 &
pp=$!
LC_PIDS="$LC_PIDS $pp"
for i in $(seq 100); do
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/ui/" && break
    kill -0 "$pp" 2>/dev/null || lc_fail "pprof -http exited: $(cat "$LC_TMP/pprof.log")"
    sleep 0.2
done
curl -s --max-time 60 -o "$LC_TMP/source.html" "http://127.0.0.1:$port/ui/source?f=store_put" ||
    lc_fail "no source page"
kill "$pp" 2>/dev/null
python3 - "$LC_TMP/source.html" >"$LC_TMP/source.txt" <<'PY'
import html, re, sys
s = open(sys.argv[1]).read()
s = re.sub(r"<script.*?</script>|<style.*?</style>", "", s, flags=re.S)
print(html.unescape(re.sub(r"<[^>]+>", "", s)))
PY
line=$(grep -n 'struct store_entry \*entry = malloc(sizeof(\*entry) + len);' "$SRC/leaky/store.c" | cut -d: -f1)
[ -n "$line" ] || lc_fail "leaky/store.c has no malloc line to look for"
grep -Eq "^ *store_put.*leaky/store.c" "$LC_TMP/source.txt" || lc_fail "the source page does not list store_put in leaky/store.c"
grep -Eq "^ *$line +[0-9.]+[kMG]?B +[0-9.]+[kMG]?B +struct store_entry \*entry = malloc\(sizeof\(\*entry\) \+ len\);" \
    "$LC_TMP/source.txt" || lc_fail "line $line (the malloc) is not annotated with in-use bytes: $(grep -n malloc "$LC_TMP/source.txt" | head -3)"
echo "ok: pprof's source view annotates leaky/store.c:$line: $(grep -E "^ *$line " "$LC_TMP/source.txt" | head -1 | cut -c1-60)"

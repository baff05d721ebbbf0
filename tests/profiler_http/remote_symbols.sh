#!/usr/bin/env bash
# Remote symbolization end to end: a leaky whose binary pprof cannot read (a copy, deleted once
# the server's symbolizer has opened it: as after a deploy replaced the file, or on a machine
# without it) serves the legacy text profiles, which carry bare addresses only (their "#"
# lines are comments to pprof). go tool pprof fetches them and asks /debug/pprof/symbol:
#  - -symbolize=none:  no store_put (the names are not in the profile);
#  - -symbolize=local: no store_put (the binary is gone);
#  - -symbolize=remote: store_put and handle_process (heap), worker_main (threads): the names
#    came from the server.
# usage: remote_symbols.sh LEAKY LOADGEN ALLOC_LOOP LIBHEAPPROF   (exit 77: no Go toolchain)
set -u
. "$(dirname "$0")/http_lib.sh"
ph_need_go

mkdir -p "$LC_TMP/gone"
cp "$PH_LEAKY" "$LC_TMP/gone/leaky-copy"
HEAPPROF_RATE=4096 lc_start_server S "$LC_TMP/gone/leaky-copy" --threads 2
D="$S_DEBUG_URL/debug/pprof"
ph_load "$S_URL/process" 500
# The server opens its binary (libdwfl) at its first symbolization and keeps it open.
[ "$(ph_get "$D/heap?debug=1")" = 200 ] && grep -q $'\tstore_put+' "$LC_TMP/body" ||
    lc_fail "the server does not symbolize its own text profile"
[ "$(ph_get "$D/threads?debug=1")" = 200 ] && grep -q $'\tworker_main+' "$LC_TMP/body" ||
    lc_fail "the server does not symbolize its threads"
rm -f "$LC_TMP/gone/leaky-copy"
grep -q 'leaky-copy (deleted)' /proc/"$S_PID"/maps || lc_fail "the copy is still on disk"

ph_pprof -symbolize=none -raw "$D/heap?debug=1" >"$LC_TMP/none"
grep -q 'store_put' "$LC_TMP/none" && lc_fail "the text profile carries names: the test proves nothing"
ph_pprof -symbolize=local -raw "$D/heap?debug=1" >"$LC_TMP/local"
grep -q 'store_put' "$LC_TMP/local" && lc_fail "pprof found the deleted binary: the test proves nothing"
ph_pprof -symbolize=remote -raw "$D/heap?debug=1" >"$LC_TMP/remote"
ph_expect "$LC_TMP/remote" ' store_put' ' handle_process' 'leaky-copy'
ph_pprof -symbolize=remote -top "$D/heap?debug=1" >"$LC_TMP/remote_top"
ph_expect "$LC_TMP/remote_top" '^Type: inuse_space' ' store_put$'
ph_pprof -symbolize=remote -traces "$D/threads?debug=1" >"$LC_TMP/remote_threads"
ph_expect "$LC_TMP/remote_threads" ' worker_main$'

lc_stop_server S
[ "$S_STATUS" = 0 ] || lc_fail "leaky exited $S_STATUS"
echo "ok: go tool pprof names a deleted binary's functions through /debug/pprof/symbol"

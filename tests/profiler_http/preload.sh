#!/usr/bin/env bash
# The profiler in a program that knows nothing of it (LD_PRELOAD=libheapprof.so):
#  - HEAPPROF_HTTP=127.0.0.1:0 prints "heapprof[PID alloc_loop]: listening /debug http://..." on
#    stderr and serves the endpoints from a thread of its own: go tool pprof reads heap (keep_block on
#    top), heap?debug=1 and threads (the program's main thread and hprof-http); memstats works;
#  - a taken port: a clear warning, and the program still runs to its end (exit 0);
#  - HEAPPROF_FILE + HEAPPROF_INTERVAL=1s: numbered profiles appear while it runs, and one more
#    at exit (whose in-use is empty: alloc_loop frees all before it exits); pprof reads them;
#  - SIGUSR2 with a 1 h interval: a profile is written at once (within 2 s), then one at exit.
# usage: preload.sh LEAKY LOADGEN ALLOC_LOOP LIBHEAPPROF   (exit 77: no Go toolchain)
set -u
. "$(dirname "$0")/http_lib.sh"
ph_need_go

# start_preloaded NAME SECONDS ENV...: alloc_loop under the profiler; sets NAME_PID, NAME_ERR.
start_preloaded() {
    local name=$1 secs=$2
    shift 2
    env LD_PRELOAD="$PH_LIB" HEAPPROF_RATE=65536 "$@" "$PH_ALLOC_LOOP" "$secs" \
        >"$LC_TMP/$name.out" 2>"$LC_TMP/$name.err" &
    local pid=$!
    LC_PIDS="$LC_PIDS $pid"
    printf -v "${name}_PID" '%s' "$pid"
    printf -v "${name}_ERR" '%s' "$LC_TMP/$name.err"
}

# wait_exit PID: it exits 0 within 20 s.
wait_exit() {
    local pid=$1 i status=0
    for i in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && lc_fail "pid $pid did not exit"
    wait "$pid" || status=$?
    [ "$status" = 0 ] || lc_fail "pid $pid exited $status"
}

# --- HEAPPROF_HTTP -------------------------------------------------------------------------
start_preloaded A 30 HEAPPROF_HTTP=127.0.0.1:0
url=""
for i in $(seq 100); do
    # Every line of the profiler names the process: heapprof[PID COMM].
    url=$(sed -n "s#^heapprof\\[$A_PID alloc_loop\\]: listening /debug \\(http://127\\.0\\.0\\.1:[0-9]*\\)\$#\\1#p" "$A_ERR")
    [ -n "$url" ] && break
    kill -0 "$A_PID" 2>/dev/null || lc_fail "alloc_loop died: $(cat "$A_ERR")"
    sleep 0.1
done
[ -n "$url" ] || lc_fail "no 'heapprof[$A_PID alloc_loop]: listening /debug' line: $(cat "$A_ERR")"
sleep 1 # let it keep a few MiB
ph_pprof -top "$url/debug/pprof/heap" >"$LC_TMP/top"
ph_expect "$LC_TMP/top" '^File: alloc_loop' '^Type: inuse_space' ' keep_block$'
awk '/flat%/ { getline; exit !/keep_block$/ }' "$LC_TMP/top" ||
    lc_fail "keep_block is not the top in-use function: $(cat "$LC_TMP/top")"
ph_pprof -top -sample_index=alloc_objects "$url/debug/pprof/allocs" >"$LC_TMP/top_allocs"
ph_expect "$LC_TMP/top_allocs" ' churn_block$'
ph_pprof -top "$url/debug/pprof/heap?debug=1" >"$LC_TMP/top_text"
ph_expect "$LC_TMP/top_text" ' keep_block$'
ph_pprof -traces "$url/debug/pprof/threads" >"$LC_TMP/traces"
ph_expect "$LC_TMP/traces" 'thread: +alloc_loop' 'thread: +hprof-http' ' main$' ' serve_main$'
[ "$(ph_get "$url/debug/memstats")" = 200 ] || lc_fail "memstats"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["inuse_bytes"] > 1e6, d' \
    "$LC_TMP/body" || lc_fail "memstats from the preloaded program: $(cat "$LC_TMP/body")"
kill -TERM "$A_PID"
wait_exit "$A_PID"
grep -q '^alloc_loop: kept ' "$LC_TMP/A.out" || lc_fail "alloc_loop did not finish its work"

# --- a port already taken: a warning, and the program carries on --------------------------
port=${url##*:}
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True)
time.sleep(30)' >"$LC_TMP/holder" &
holder=$!
LC_PIDS="$LC_PIDS $holder"
for i in $(seq 50); do [ -s "$LC_TMP/holder" ] && break; sleep 0.1; done
taken=$(cat "$LC_TMP/holder")
start_preloaded B 0.5 HEAPPROF_HTTP=127.0.0.1:"$taken"
wait_exit "$B_PID"
grep -q "^heapprof\[$B_PID alloc_loop\]: HEAPPROF_HTTP: cannot listen on 127.0.0.1:$taken: .*the debug endpoints are off" "$B_ERR" ||
    lc_fail "no clear warning for a taken port: $(cat "$B_ERR")"
grep -q '^alloc_loop: kept ' "$LC_TMP/B.out" || lc_fail "alloc_loop did not carry on"
kill "$holder" 2>/dev/null

# --- HEAPPROF_FILE + HEAPPROF_INTERVAL -----------------------------------------------------
mkdir -p "$LC_TMP/files"
start_preloaded C 30 HEAPPROF_FILE="$LC_TMP/files/loop" HEAPPROF_INTERVAL=1s
for i in $(seq 60); do [ -e "$LC_TMP/files/loop.0001.pb.gz" ] && break; sleep 0.1; done
[ -e "$LC_TMP/files/loop.0000.pb.gz" ] && [ -e "$LC_TMP/files/loop.0001.pb.gz" ] ||
    lc_fail "HEAPPROF_INTERVAL=1s wrote no profiles in 6 s: $(ls "$LC_TMP/files")"
kill -TERM "$C_PID"
wait_exit "$C_PID"
last=$(ls "$LC_TMP/files" | sort | tail -1)
n_before=$(ls "$LC_TMP/files" | wc -l)
[ "$n_before" -ge 3 ] || lc_fail "no profile at exit: $(ls "$LC_TMP/files")"
# The exit profile: everything was freed by then, but not unallocated.
ph_pprof -top -sample_index=alloc_space "$LC_TMP/files/$last" >"$LC_TMP/top_file"
ph_expect "$LC_TMP/top_file" ' keep_block$'
ls "$LC_TMP/files" | grep -v '^loop\.[0-9]\{4\}\.pb\.gz$' && lc_fail "stray files: $(ls "$LC_TMP/files")"

# --- SIGUSR2 -------------------------------------------------------------------------------
mkdir -p "$LC_TMP/usr2"
start_preloaded E 30 HEAPPROF_FILE="$LC_TMP/usr2/sig" HEAPPROF_INTERVAL=1h
for i in $(seq 50); do grep -q hprof-usr2 /proc/"$E_PID"/task/*/comm 2>/dev/null && break; sleep 0.1; done
grep -q hprof-usr2 /proc/"$E_PID"/task/*/comm || lc_fail "no hprof-usr2 thread"
sleep 0.5
[ -z "$(ls "$LC_TMP/usr2")" ] || lc_fail "a profile before any signal: $(ls "$LC_TMP/usr2")"
kill -USR2 "$E_PID"
for i in $(seq 20); do [ -e "$LC_TMP/usr2/sig.0000.pb.gz" ] && break; sleep 0.1; done
[ -e "$LC_TMP/usr2/sig.0000.pb.gz" ] || lc_fail "SIGUSR2 wrote no profile within 2 s"
kill -0 "$E_PID" || lc_fail "SIGUSR2 killed the program"
ph_pprof -top "$LC_TMP/usr2/sig.0000.pb.gz" >"$LC_TMP/top_usr2"
ph_expect "$LC_TMP/top_usr2" ' keep_block$'
kill -TERM "$E_PID"
wait_exit "$E_PID"
[ -e "$LC_TMP/usr2/sig.0001.pb.gz" ] || lc_fail "no profile at exit after SIGUSR2"
echo "ok: HEAPPROF_HTTP, a taken port, HEAPPROF_FILE + HEAPPROF_INTERVAL, SIGUSR2"

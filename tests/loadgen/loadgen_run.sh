#!/usr/bin/env bash
# Integration test of loadgen against lg_fake_server (exactly known heap behaviour) and the bare
# evhttp server: the verdicts and outputs, `loadgen verdict` and --fail-on-leak with their exit
# statuses and bad-input messages, request counts against rate x duration, a stalled
# server showing in p99, errors and exit statuses, diff and plot. 127.0.0.1 only; every server
# is killed by PID (tests/lib.sh); about 50 s in all.
#   loadgen_run.sh BIN_DIR
set -u
BIN=$1
. "$(dirname "$0")/../lib.sh"
LG=$BIN/loadgen
T=$LC_TMP

expect_status() { # expect_status WANT DESCRIPTION CMD...
    local want=$1 what=$2 got=0
    shift 2
    "$@" >"$T/out" 2>"$T/err" || got=$?
    [ "$got" = "$want" ] || lc_fail "$what: exit $got, want $want; stderr: $(cat "$T/err")"
}
json_num() { # json_num FILE KEY: a top-level number of report.json
    sed -n "s/^  \"$2\": \([-0-9.e+]*\),*$/\1/p" "$1"
}
near() { # near VALUE WANT PERCENT
    awk -v v="$1" -v w="$2" -v p="$3" 'BEGIN { d = v - w; if (d < 0) d = -d; exit !(d <= w * p / 100) }'
}

# --- usage errors: exit 2 with a message naming the problem
expect_status 2 "no --url" "$LG" --rate 10
grep -q -- "--url is required" "$T/err" || lc_fail "no --url: message: $(cat "$T/err")"
expect_status 2 "bad duration" "$LG" --url http://127.0.0.1:1/ --duration 10x
grep -q "bad duration" "$T/err" || lc_fail "bad duration message: $(cat "$T/err")"
expect_status 2 "zero rate" "$LG" --url http://127.0.0.1:1/ --rate 0
expect_status 2 "negative rate" "$LG" --url http://127.0.0.1:1/ --rate -5
expect_status 2 "zero connections" "$LG" --url http://127.0.0.1:1/ --connections 0
expect_status 2 "https" "$LG" --url https://127.0.0.1:1/
expect_status 2 "diff with one file" "$LG" diff only-one.pb.gz
expect_status 2 "plot without -o" "$LG" plot "$T"
expect_status 2 "plot to .jpg" "$LG" plot -o "$T/x.jpg" "$T"

# --- a dead target at start: exit 1, clear message
expect_status 1 "dead target" "$LG" --url http://127.0.0.1:1/process --duration 1s
grep -q "not answering" "$T/err" || lc_fail "dead target message: $(cat "$T/err")"

lc_start_server fake "$BIN/lg_fake_server" --mode leak
# --- an unwritable --out: exit 1
expect_status 1 "unwritable --out" "$LG" --url "$fake_URL/process" --out /proc/loadgen-nope/x
grep -q "cannot create --out" "$T/err" || lc_fail "unwritable --out message: $(cat "$T/err")"

# --- a leak: LEAK, the growing function named, outputs complete
"$LG" --url "$fake_URL/process" --rate 2000 --duration 6s --profile-url "$fake_DEBUG_URL/debug/pprof/heap" \
    --profile-every 500ms --out "$T/leak" --label fake-leak >"$T/leak.txt" 2>"$T/leak.err" ||
    lc_fail "leak run failed: $(cat "$T/leak.err")"
tail -1 "$T/leak.txt" | grep -q "^verdict: LEAK .*store_put (fake/store.c:42)" ||
    lc_fail "leak run: $(tail -1 "$T/leak.txt")"
R=$T/leak/report.json
[ "$(sed -n 's/^  "verdict": "\(.*\)",$/\1/p' "$R")" = LEAK ] || lc_fail "report.json verdict: $(cat "$R")"
# Open loop: 2000/s for 6 s makes 12000 requests due, each either answered or counted as unsent
# or unfinished at the end (a loadgen slower than its schedule, as under ThreadSanitizer on a
# busy machine, sends fewer but loses none from the count).
due() { # due REPORT: requests + unsent + unfinished
    echo $(($(json_num "$1" requests) + $(json_num "$1" unsent) + $(json_num "$1" unfinished)))
}
near "$(due "$R")" 12000 2 || lc_fail "requests due $(due "$R"), want 12000 +-2%"
served_rate=$(awk -v n="$(json_num "$R" requests)" -v d="$(json_num "$R" duration_s)" 'BEGIN { print n / d }')
near "$(json_num "$R" inuse_bytes_per_request)" 1024 5 ||
    lc_fail "bytes per request $(json_num "$R" inuse_bytes_per_request), want 1024"
# The slope is 1024 B x the rate during the fit: when loadgen kept its schedule (nothing
# unsent) that is the served rate; when it fell behind, the rate varied over the run and the
# slope can only be bounded by the schedule's.
slope=$(json_num "$R" inuse_slope_bytes_per_s)
if [ "$(json_num "$R" unsent)" = 0 ]; then
    near "$slope" "$(awk -v r="$served_rate" 'BEGIN { print r * 1024 }')" 5 ||
        lc_fail "slope $slope, want 1024 B x $served_rate requests/s"
else
    awk -v s="$slope" 'BEGIN { exit !(s > 0 && s <= 2048000 * 1.05) }' ||
        lc_fail "slope $slope with $(json_num "$R" unsent) unsent: want 0 .. 1024 B x 2000/s"
fi
for key in duration_s throughput_rps errors; do
    [ -n "$(json_num "$R" $key)" ] || lc_fail "report.json lacks $key"
done
grep -q '"latency_ms": {"p50": [0-9.]*, "p90": [0-9.]*, "p99": [0-9.]*, "p999": [0-9.]*, "max"' "$R" ||
    lc_fail "report.json latency_ms"
head -1 "$T/leak/timeline.csv" | grep -q '^elapsed_s,requests,errors,.*inuse_bytes,inuse_objects,rss_bytes' ||
    lc_fail "timeline header: $(head -1 "$T/leak/timeline.csv")"
rows=$(($(wc -l <"$T/leak/timeline.csv") - 1))
[ "$rows" -ge 6 ] && [ "$rows" -le 8 ] || lc_fail "timeline has $rows rows for 6 s"
tail -1 "$T/leak/timeline.csv" | awk -F, '$12 > 8388608 { ok = 1 } END { exit !ok }' ||
    lc_fail "memstats RSS not in the timeline: $(tail -1 "$T/leak/timeline.csv")"
nprof=$(ls "$T/leak"/heap-*.pb.gz | wc -l)
[ "$nprof" -ge 12 ] || lc_fail "$nprof heap profiles, want >= 12"
[ -s "$T/leak/heap-0000.pb.gz" ] || lc_fail "no heap-0000.pb.gz"

# --- profiles.csv: sample_period (the fake server's profiles are exact: period 1 -> 0)
head -1 "$T/leak/profiles.csv" | grep -q '^seq,elapsed_s,requests,inuse_bytes,inuse_objects,sample_period,file$' ||
    lc_fail "profiles.csv header: $(head -1 "$T/leak/profiles.csv")"
sed -n 2p "$T/leak/profiles.csv" | grep -q '^0,[0-9.]*,[0-9]*,[0-9]*,[0-9]*,0,heap-0000.pb.gz$' ||
    lc_fail "profiles.csv row: $(sed -n 2p "$T/leak/profiles.csv")"
grep -q '"run_more_s": 0' "$R" && grep -q '"verdict_stats": {"reason": "staircase"' "$R" ||
    lc_fail "report.json verdict fields: $(grep verdict "$R")"

# --- loadgen verdict: the saved run judged again, the same line, exit 1 for LEAK
expect_status 1 "verdict of the leak run" "$LG" verdict "$T/leak"
grep -q "^$T/leak: verdict: LEAK .*store_put (fake/store.c:42)" "$T/out" ||
    lc_fail "verdict leak: $(cat "$T/out")"
[ "$(sed "s|^$T/leak: ||" "$T/out")" = "$(tail -1 "$T/leak.txt")" ] ||
    lc_fail "offline verdict differs: $(cat "$T/out") vs $(tail -1 "$T/leak.txt")"
# without the profile files: the same verdict, no function named
mkdir "$T/csvonly" && cp "$T/leak/profiles.csv" "$T/csvonly/"
expect_status 1 "verdict without profiles" "$LG" verdict "$T/csvonly"
grep -q "verdict: LEAK " "$T/out" && ! grep -q "grew most" "$T/out" ||
    lc_fail "verdict without profile files: $(cat "$T/out")"
# columns found by name, in any order, with extra ones
awk -F, 'BEGIN { OFS = "," } { print $6, "x", $4, $2, $3 }' "$T/leak/profiles.csv" >"$T/csvonly/profiles.csv"
expect_status 1 "verdict with reordered columns" "$LG" verdict "$T/csvonly"
# bad input: exit 2, the file and line named
expect_status 2 "verdict of a missing dir" "$LG" verdict "$T/nope"
grep -q "$T/nope/profiles.csv" "$T/err" || lc_fail "missing dir message: $(cat "$T/err")"
sed '4s/,[0-9]*,/,12abc,/' "$T/leak/profiles.csv" >"$T/csvonly/profiles.csv"
expect_status 2 "verdict of a malformed row" "$LG" verdict "$T/csvonly"
grep -q "csvonly/profiles.csv:4: .*12abc" "$T/err" || lc_fail "malformed row message: $(cat "$T/err")"
printf 'seq,elapsed_s,requests\n0,0.1,5\n' >"$T/csvonly/profiles.csv"
expect_status 2 "verdict without inuse_bytes" "$LG" verdict "$T/csvonly"
grep -q 'csvonly/profiles.csv:1: no "inuse_bytes" column' "$T/err" || lc_fail "no column message: $(cat "$T/err")"
expect_status 2 "verdict without a dir" "$LG" verdict

# --- --fail-on-leak: exit 1 on LEAK, after every file is written; 3 on UNDECIDED
expect_status 1 "--fail-on-leak on a leak" "$LG" --url "$fake_URL/process" --rate 1000 --duration 3s \
    --profile-url "$fake_DEBUG_URL/debug/pprof/heap" --profile-every 500ms --out "$T/gate" --fail-on-leak
tail -1 "$T/out" | grep -q "^verdict: LEAK" || lc_fail "gate run: $(tail -1 "$T/out")"
[ -s "$T/gate/report.json" ] && [ -s "$T/gate/timeline.csv" ] && [ -s "$T/gate/heap-0001.pb.gz" ] ||
    lc_fail "--fail-on-leak lost files"
expect_status 3 "--fail-on-leak on too few profiles" "$LG" --url "$fake_URL/process" --rate 1000 \
    --duration 2s --profile-url "$fake_DEBUG_URL/debug/pprof/heap" --profile-every 1s --fail-on-leak
tail -1 "$T/out" | grep -q "^verdict: UNDECIDED .*too few to judge (need 6); run at least [0-9]* s more" ||
    lc_fail "short gate run: $(tail -1 "$T/out")"
expect_status 0 "no --fail-on-leak: exit 0 whatever the verdict" "$LG" --url "$fake_URL/process" \
    --rate 1000 --duration 2s --profile-url "$fake_DEBUG_URL/debug/pprof/heap" --profile-every 1s

# --- diff between the first and the last profile
last=$(ls "$T/leak"/heap-*.pb.gz | tail -1)
"$LG" diff "$T/leak/heap-0000.pb.gz" "$last" >"$T/diff.txt" || lc_fail "diff failed"
sed -n 4p "$T/diff.txt" | grep -q "store_put fake/store.c:42" || lc_fail "diff top: $(cat "$T/diff.txt")"
expect_status 1 "diff of a non-profile" "$LG" diff "$T/leak/timeline.csv" "$last"

# --- a profile URL that does not answer pprof: exit 1, what was gathered kept
expect_status 1 "profile URL 404" "$LG" --url "$fake_URL/process" --duration 2s \
    --profile-url "$fake_DEBUG_URL/no/such" --out "$T/p404"
grep -q "does not answer pprof: HTTP 404" "$T/err" || lc_fail "404 profile message: $(cat "$T/err")"
[ -s "$T/p404/report.json" ] && [ -s "$T/p404/timeline.csv" ] || lc_fail "404 run kept nothing"
lc_stop_server fake

lc_start_server notpprof "$BIN/lg_fake_server" --mode notpprof
expect_status 1 "profile URL not pprof" "$LG" --url "$notpprof_URL/process" --duration 2s \
    --profile-url "$notpprof_DEBUG_URL/debug/pprof/heap" --out "$T/np"
grep -q "does not answer pprof" "$T/err" || lc_fail "not-pprof message: $(cat "$T/err")"
lc_stop_server notpprof

# --- a TTL store: BOUNDED
lc_start_server ttl "$BIN/lg_fake_server" --mode ttl --ttl-ms 2000 --sweep-ms 1000
"$LG" --url "$ttl_URL/process" --rate 2000 --duration 8s --profile-url "$ttl_DEBUG_URL/debug/pprof/heap" \
    --profile-every 700ms --out "$T/ttl" --label fake-ttl >"$T/ttl.txt" 2>&1 || lc_fail "ttl run failed"
tail -1 "$T/ttl.txt" | grep -q "^verdict: BOUNDED in-use stayed within" || lc_fail "ttl run: $(tail -1 "$T/ttl.txt")"
expect_status 0 "verdict of the ttl run" "$LG" verdict "$T/ttl"
expect_status 1 "verdict of a leak and a ttl run" "$LG" verdict "$T/ttl" "$T/leak"
[ "$(grep -c ': verdict: ' "$T/out")" = 2 ] || lc_fail "two dirs, two lines: $(cat "$T/out")"
lc_stop_server ttl

# --- plot: PNG and SVG, one line per run
"$LG" plot -o "$T/p.png" "$T/leak" "$T/ttl" >/dev/null || lc_fail "plot png failed"
[ "$(head -c 8 "$T/p.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || lc_fail "not a PNG"
"$LG" plot -o "$T/p.svg" "$T/leak" "$T/ttl" >/dev/null || lc_fail "plot svg failed"
grep -q "<svg" "$T/p.svg" || lc_fail "not an SVG"
grep -q "fake-leak in-use" "$T/p.svg" && grep -q "fake-ttl RSS" "$T/p.svg" || lc_fail "SVG lacks the run labels"
expect_status 1 "plot without gnuplot" env PATH=/nonexistent "$LG" plot -o "$T/q.png" "$T/leak"
grep -q "gnuplot is not installed" "$T/err" || lc_fail "no-gnuplot message: $(cat "$T/err")"
# An output that cannot be written: exit 1 naming it and why, before gnuplot runs, and nothing
# on stdout (gnuplot used to draw the PNG to loadgen's stdout when its `set output` failed).
# Paths that refuse root too: a missing directory, /proc, a directory named like the output.
mkdir -p "$T/isdir.png"
for o in /nonexistent-dir/p.png /proc/p.png "$T/isdir.png"; do
    expect_status 1 "plot -o $o" "$LG" plot -o "$o" "$T/leak"
    grep -q "^loadgen plot: cannot write $o: " "$T/err" || lc_fail "plot -o $o: message: $(cat "$T/err")"
    [ ! -s "$T/out" ] || lc_fail "plot -o $o: $(wc -c <"$T/out") bytes on stdout"
done
# gnuplot fails: exit 1, and no empty or half-drawn file is left under the name.
expect_status 1 "plot with a failing gnuplot" env GNUPLOT=/bin/false "$LG" plot -o "$T/f.png" "$T/leak"
grep -q "gnuplot failed" "$T/err" || lc_fail "failing gnuplot: message: $(cat "$T/err")"
[ ! -e "$T/f.png" ] || lc_fail "failing gnuplot left $T/f.png"

# --- rate accuracy, max, and a stalled server (SIGSTOP by PID for 1 s) against bare_server
lc_start_server bare "$BIN/bare_server" --threads 1
"$LG" --url "$bare_URL/process" --rate 3000 --duration 3s --out "$T/r3k" >"$T/r3k.txt" || lc_fail "3k run failed"
near "$(due "$T/r3k/report.json")" 9000 2 || lc_fail "3k/s x 3 s: $(due "$T/r3k/report.json") requests due"
[ "$(json_num "$T/r3k/report.json" errors)" = 0 ] || lc_fail "errors at 3k/s"
"$LG" --url "$bare_URL/process" --rate max --duration 2s --connections 8 --threads 2 --out "$T/max" >/dev/null ||
    lc_fail "max run failed"
awk -v n="$(json_num "$T/max/report.json" requests)" 'BEGIN { exit !(n > 2000) }' || lc_fail "max run too slow"
"$LG" --url "$bare_URL/process" --rate 1000 --duration 5s --out "$T/stall" >"$T/stall.txt" &
lg_pid=$!
sleep 1.5
kill -STOP "$bare_PID"
sleep 1
kill -CONT "$bare_PID"
wait "$lg_pid" || lc_fail "stall run failed"
p99=$(sed -n 's/.*"p99": \([0-9.]*\).*/\1/p' "$T/stall/report.json")
awk -v p="$p99" 'BEGIN { exit !(p >= 500) }' || lc_fail "a 1 s stall shows p99 $p99 ms, want >= 500 (coordinated omission?)"
# Every request of the schedule is accounted for (answered, or still unsent or unfinished when a
# busy machine kept loadgen behind it at the end), as in the 3k run above.
near "$(due "$T/stall/report.json")" 5000 2 || lc_fail "stalled run: $(due "$T/stall/report.json") requests due, want 5000"
lc_stop_server bare
echo "loadgen_run: ok (stall p99 $p99 ms)"

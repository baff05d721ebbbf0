#!/bin/sh
# HEAPPROF_FILE with many numbers already taken: the next profile is written once, after the
# highest number on disk, whatever the count (it used to write and fsync a whole profile per
# taken number: 3000 existing files cost 2.1 s at exit). The cost is counted in system calls
# under strace, not timed, so a busy machine cannot fail or pass it by accident.
# usage: file_numbering.sh PROFILE_HELPER
set -eu
. "$(dirname "$0")/../skip.sh"
helper=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
command -v strace >/dev/null 2>&1 || lc_skip "strace is not installed"
dir=$(mktemp -d /tmp/hprof-numbering-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
strace -f -qq -e trace=none true 2>/dev/null || lc_skip "strace cannot trace here (ptrace not permitted)"

# 3000 taken numbers, with a gap at 1500 (an old run's deleted file), and a file of another
# prefix that starts like ours: the new profile goes after the highest, 3000.
i=0
while [ $i -lt 3000 ]; do
    [ $i -ne 1500 ] && printf '%s/p.%04d.pb.gz\n' "$dir" $i
    i=$((i + 1))
done | xargs touch
touch "$dir/p.9999.pb.gz.old" "$dir/px.5000.pb.gz" "$dir/p.tmp.1.2"

HEAPPROF_FILE="$dir/p" strace -f -qq -o "$dir/trace" \
    -e trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat,openat,open,creat \
    "$helper" sleep 10 || fail "the helper exited $?"

[ -s "$dir/p.3000.pb.gz" ] || fail "no p.3000.pb.gz (after the highest taken number): $(ls "$dir" | tail -3)"
[ ! -s "$dir/p.1500.pb.gz" ] || fail "the gap at 1500 was filled: the newest must have the highest number"
"$helper" check 6 "$dir/p.3000.pb.gz" || fail "p.3000.pb.gz does not decode"
# One profile written: one temp file created, one fsync of it and one of the directory, one
# rename (the directory was read once, so no number is tried twice).
creates=$(grep -c 'O_CREAT' "$dir/trace" || true)
fsyncs=$(grep -cE '(fsync|fdatasync)\(' "$dir/trace" || true)
renames=$(grep -cE '(rename|renameat|renameat2|link|linkat)\(' "$dir/trace" || true)
[ "$creates" -eq 1 ] || fail "expected 1 file created, saw $creates: $(grep O_CREAT "$dir/trace" | head -5)"
[ "$fsyncs" -le 2 ] || fail "expected <= 2 fsyncs (the profile, the directory), saw $fsyncs"
[ "$renames" -eq 1 ] || fail "expected 1 rename, saw $renames"
[ -z "$(ls "$dir" | grep '\.tmp\.' | grep -v '^p\.tmp\.1\.2$' || true)" ] || fail "a temp file was left"
echo "ok: 3000 taken numbers: p.3000 written with $creates create, $fsyncs fsyncs, $renames rename"

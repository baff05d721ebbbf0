#!/bin/sh
# The real client: `go tool pprof` reads the profiles the output half writes (heap and allocs,
# from fake snapshots of real call sites) with -raw, -top, -traces, -list, and with
# -symbolize=none shows our own function names and file:line (nothing re-symbolized).
# usage: pprof_client.sh PROFILE_HELPER    (exit 77 = skipped: no Go toolchain)
set -eu
helper=$1
. "$(dirname "$0")/../skip.sh"
command -v go >/dev/null 2>&1 || lc_skip "go (Debian golang-go) is not installed"
dir=$(mktemp -d /tmp/hprof-pprof-XXXXXX)
trap 'rm -rf "$dir"' EXIT
export HOME="$dir/home" GOCACHE="$dir/gocache" GOPATH="$dir/gopath" PPROF_TMPDIR="$dir/pprof"
export GOFLAGS=-mod=mod GO111MODULE=auto
mkdir -p "$HOME"
# pprof -list trims a source path at the base name of its search path (the working directory)
# when that name appears in it: run from the temp dir, whose name never does.
cd "$dir"
fail() { echo "FAIL: $*" >&2; exit 1; }
pp() { timeout 120 go tool pprof "$@" 2>"$dir/stderr" || { cat "$dir/stderr" >&2; fail "go tool pprof $*"; }; }
expect() { # expect FILE PATTERN...: every extended regexp matches some line of FILE
    f=$1; shift
    for pat in "$@"; do grep -Eq -- "$pat" "$f" || { cat "$f" >&2; fail "no line matches '$pat'"; }; done
}

"$helper" write "$dir/heap.pb.gz" heap || fail "helper write heap"
"$helper" write "$dir/allocs.pb.gz" allocs || fail "helper write allocs"

# -raw: the profile as pprof decoded it, with our mappings and build-id.
pp -raw "$dir/heap.pb.gz" >"$dir/raw"
expect "$dir/raw" '^PeriodType: space bytes' '^Period: 4096' \
    'alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes' \
    'bytes:\[1024 bytes\]' 'profile_helper'
id=$(readelf -n "$helper" | sed -n 's/.*Build ID: //p')
[ -n "$id" ] && expect "$dir/raw" "$id"

# -top: heap shows inuse_space by default, allocs alloc_space.
pp -top "$dir/heap.pb.gz" >"$dir/top"
expect "$dir/top" '^Type: inuse_space' 'fake_store_put' 'fake_main_loop'
pp -top "$dir/allocs.pb.gz" >"$dir/top_allocs"
expect "$dir/top_allocs" '^Type: alloc_space' 'fake_inline_alloc'
# fake_store_put's buckets: 10.5 x 1024 B (10752 B, exact) and 1 x 2048 B: 12800 B flat.
pp -top -sample_index=alloc_space -unit=B "$dir/heap.pb.gz" >"$dir/top_bytes"
expect "$dir/top_bytes" '^ +12800B .* fake_store_put$'

# -traces: whole stacks, leaf first, with the inlined frame marked.
pp -traces "$dir/allocs.pb.gz" >"$dir/traces"
expect "$dir/traces" 'fake_store_put' 'fake_handle_request' 'fake_main_loop' \
    'fake_inline_alloc' 'fake_inline_caller \(inline\)|fake_inline_alloc \(inline\)'

# -list: annotated source of our file, found at the path the profile carries.
pp -list 'fake_store_put' "$dir/heap.pb.gz" >"$dir/list"
expect "$dir/list" 'ROUTINE =+ fake_store_put in .*/tests/profiler_output/fake_sites\.c' \
    'MARK\(s, 0, "fake_store_put"\)'

# -symbolize=none -raw: the names, files and lines are ours, not pprof's.
pp -symbolize=none -raw "$dir/heap.pb.gz" >"$dir/raw_none"
expect "$dir/raw_none" 'fake_store_put .*/fake_sites\.c:[0-9]+' \
    'fake_inline_alloc .*/fake_sites\.c:[0-9]+' 'fake_inline_caller .*/fake_sites\.c:[0-9]+' \
    'getpid'
pp -symbolize=none -lines -top "$dir/heap.pb.gz" >"$dir/lines"
expect "$dir/lines" 'fake_store_put .*fake_sites\.c:[0-9]+'
if grep -qi 'warning\|unrecognized\|failed' "$dir/stderr"; then
    cat "$dir/stderr" >&2
    fail "pprof warned"
fi
echo "ok: go tool pprof -raw -top -traces -list -symbolize=none read our profiles"

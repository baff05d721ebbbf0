#!/usr/bin/env bash
# Install, as a user or a package would: `cmake --install BUILD --prefix P`, then
#  - P holds the programs, libheapprof.so and .a, heapprof.h and heapprof.pc;
#  - an outside C program builds against P with `pkg-config --cflags --libs heapprof` (shared)
#    and with `--static` (libheapprof.a, no libheapprof.so at run time), and both runs see their
#    own 4 MiB in use (HEAPPROF_RATE=1: exact) and write a profile that loadgen diff reads;
#  - the installed launcher finds the installed library (not the build tree's);
#  - -DBUILD_TESTING=OFF configures without cmocka and without tests.
# usage: install.sh SOURCE_DIR BUILD_DIR
set -u
. "$(dirname "$0")/../lib.sh"
SRC=$1
BUILD=$2
command -v pkg-config >/dev/null || lc_fail "pkg-config is not installed"
P=$LC_TMP/prefix
cmake --install "$BUILD" --prefix "$P" >"$LC_TMP/install.log" 2>&1 ||
    lc_fail "cmake --install failed: $(tail -5 "$LC_TMP/install.log")"
libdir=$(dirname "$(find "$P" -name heapprof.pc -path '*/pkgconfig/*')")
libdir=${libdir%/pkgconfig}
[ -n "$libdir" ] && [ -d "$libdir" ] || lc_fail "no heapprof.pc under $P: $(find "$P")"
for f in bin/leaky bin/fixed bin/loadgen bin/heapprof include/heapprof.h; do
    [ -s "$P/$f" ] || lc_fail "$P/$f is not installed"
done
for f in libheapprof.so libheapprof.a pkgconfig/heapprof.pc; do
    [ -s "$libdir/$f" ] || lc_fail "$libdir/$f is not installed"
done
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion heapprof)" = "$("$P/bin/heapprof" --version | awk '{print $3}')" ] ||
    lc_fail "heapprof.pc's version is not the programs' version"

cc=${CC:-cc}
# The build's sanitizer, if any (the installed libraries need its runtime).
cc="$cc${LEAKCASE_SANITIZE:+ -fsanitize=$LEAKCASE_SANITIZE}"
# shellcheck disable=SC2046 # pkg-config prints words
$cc -O1 -g -o "$LC_TMP/outside_shared" "$(dirname "$0")/outside.c" \
    $(pkg-config --cflags --libs heapprof) -Wl,-rpath,"$libdir" 2>"$LC_TMP/cc.err" ||
    lc_fail "shared build: $(cat "$LC_TMP/cc.err")"
# shellcheck disable=SC2046
$cc -O1 -g -o "$LC_TMP/outside_static" "$(dirname "$0")/outside.c" $(pkg-config --cflags heapprof) \
    -Wl,-Bstatic $(pkg-config --static --libs heapprof) 2>"$LC_TMP/cc.err" ||
    lc_fail "static build: $(cat "$LC_TMP/cc.err")"
ldd "$LC_TMP/outside_shared" | grep -q "$libdir/libheapprof.so" || lc_fail "the shared build does not use $libdir/libheapprof.so"
if ldd "$LC_TMP/outside_static" | grep -q libheapprof; then
    lc_fail "the static build still needs libheapprof.so"
fi
for kind in shared static; do
    out=$(HEAPPROF_RATE=1 "$LC_TMP/outside_$kind" "$LC_TMP/$kind.pb.gz" 2>"$LC_TMP/$kind.err") ||
        lc_fail "outside_$kind failed: $(cat "$LC_TMP/$kind.err")"
    inuse=${out#inuse_bytes }
    [ "$inuse" -ge $((4096 * 1024)) ] && [ "$inuse" -lt $((4096 * 1024 + 1024 * 1024)) ] ||
        lc_fail "outside_$kind: in use $inuse, want 4 MiB and a little"
    "$P/bin/loadgen" diff "$LC_TMP/$kind.pb.gz" "$LC_TMP/$kind.pb.gz" >/dev/null 2>"$LC_TMP/diff.err" ||
        lc_fail "the $kind profile does not decode: $(cat "$LC_TMP/diff.err")"
    echo "ok: outside_$kind (pkg-config) sees $inuse bytes in use"
done

# The installed launcher preloads the installed library.
preload=$("$P/bin/heapprof" --children -- sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
[ "$preload" = "$(realpath "$libdir/libheapprof.so")" ] ||
    lc_fail "the installed heapprof preloads '$preload', not $libdir/libheapprof.so"
echo "ok: the installed heapprof preloads $preload"

# -DBUILD_TESTING=OFF: no cmocka, no tests (configure only: the build itself is the same).
cmake -S "$SRC" -B "$LC_TMP/notests" -DBUILD_TESTING=OFF >"$LC_TMP/notests.log" 2>&1 ||
    lc_fail "-DBUILD_TESTING=OFF does not configure: $(tail -5 "$LC_TMP/notests.log")"
if grep -q '^CMOCKA_FOUND' "$LC_TMP/notests/CMakeCache.txt" || [ -d "$LC_TMP/notests/tests" ]; then
    lc_fail "-DBUILD_TESTING=OFF still looks for cmocka or configures the tests"
fi
echo "ok: -DBUILD_TESTING=OFF configures without cmocka and without tests"

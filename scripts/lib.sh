# scripts/lib.sh: what the scripts share. Source it.
#   lc_ensure_packages PKG...   install the Debian packages that are missing (apt-get update once,
#                               then apt-get install -y of only what is missing)
#   lc_build [BUILD_DIR]        configure and build (RelWithDebInfo, -Werror)

LC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building and testing need (Debian bookworm names).
LC_BUILD_PACKAGES="gcc make cmake pkg-config libevent-dev uthash-dev libunwind-dev
  libprotobuf-c-dev protobuf-c-compiler zlib1g-dev libdw-dev libelf-dev libcmocka-dev libjansson-dev"
LC_TEST_PACKAGES="curl wrk gnuplot-nox golang-go graphviz valgrind procps python3 prometheus iproute2 strace
  golang-github-google-pprof-dev"
# What the fuzz targets need (fuzz/: libFuzzer is clang's; libclang-rt-dev has its runtime).
LC_FUZZ_PACKAGES="clang libclang-rt-dev"
# What the benchmarks compare against.
LC_BENCH_PACKAGES="heaptrack libjemalloc2 libgoogle-perftools4 google-perftools time stress-ng"

lc_ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing missing packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q || return 1
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "${missing[@]}" || return 1
}

lc_build() {
    local dir=${1:-$LC_ROOT/build}
    echo "==> building in $dir"
    cmake -S "$LC_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLEAKCASE_WERROR=ON >/dev/null &&
        cmake --build "$dir" -j "$(nproc)"
}

# lc_pprof DIR: build (once) and print the path of DIR/pprof, the standalone pprof, offline from
# the sources of Debian's golang-github-google-pprof-dev (GOPATH mode, no module download). Use
# it for pprof's annotated source (-http's Source view, -weblist): the `go tool pprof` bundled
# with Go 1.19 shows an empty source view for our PIE binaries (see README). Both read the same
# profiles; everything else works with either.
lc_pprof() {
    local dir=$1 src=/usr/share/gocode/src/github.com/google/pprof
    [ -x "$dir/pprof" ] && { echo "$dir/pprof"; return 0; }
    [ -d "$src" ] || { echo "lc_pprof: $src is missing (apt-get install golang-github-google-pprof-dev)" >&2; return 1; }
    mkdir -p "$dir" || return 1
    (cd "$dir" && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off GOCACHE="$dir/gocache" \
        HOME="$dir" go build -o "$dir/pprof.tmp" github.com/google/pprof) >&2 &&
        mv "$dir/pprof.tmp" "$dir/pprof" && echo "$dir/pprof"
}

# lc_build_fuzz DIR: configure and build the fuzz targets with libFuzzer (CC=clang,
# LEAKCASE_FUZZ=ON: every library with coverage, AddressSanitizer and UBSan) in DIR.
lc_build_fuzz() {
    local dir=$1
    echo "==> building the fuzz targets (clang, libFuzzer + ASan + UBSan) in $dir"
    CC=clang cmake -S "$LC_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLEAKCASE_WERROR=ON \
        -DLEAKCASE_FUZZ=ON >/dev/null &&
        cmake --build "$dir" -j "$(nproc)" --target lc_fuzz
}

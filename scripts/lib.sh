# scripts/lib.sh: what the scripts share. Source it.
#   lc_ensure_packages PKG...   install the Debian packages that are missing (apt-get update once,
#                               then apt-get install -y of only what is missing)
#   lc_build [BUILD_DIR]        configure and build (RelWithDebInfo, -Werror)

LC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building and testing need (Debian bookworm names).
LC_BUILD_PACKAGES="gcc make cmake pkg-config libevent-dev uthash-dev libunwind-dev
  libprotobuf-c-dev protobuf-c-compiler zlib1g-dev libdw-dev libelf-dev libcmocka-dev"
LC_TEST_PACKAGES="curl wrk gnuplot-nox golang-go graphviz valgrind procps python3 prometheus iproute2"
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

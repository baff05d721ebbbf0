# tests/profiler_http/http_lib.sh: shared by this directory's shell tests. Source it with the
# test's arguments: LEAKY LOADGEN ALLOC_LOOP LIBHEAPPROF. Sources ../lib.sh (servers on port 0,
# killed by PID at exit, bounded waits) and adds:
#   ph_need_go                      lc_skip unless `go` (Debian golang-go) is installed
#   ph_pprof ARGS...                go tool pprof with a private HOME/GOCACHE/PPROF_TMPDIR,
#                                   bounded to 120 s; fails the test on error
#   ph_get URL [CURL ARGS...]       fetch into $LC_TMP/body, headers into $LC_TMP/headers;
#                                   prints the status code
#   ph_expect_error URL STATUS WORDS  the status, text/plain, X-Go-Pprof: 1, and WORDS in the body
#   ph_expect FILE PATTERN...       every extended regexp matches some line of FILE
#   ph_load URL N                   N GET requests on one keep-alive connection (curl)
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PH_LEAKY=$1
PH_LOADGEN=$2
PH_ALLOC_LOOP=$3
PH_LIB=$4
for f in "$PH_LEAKY" "$PH_LOADGEN" "$PH_ALLOC_LOOP" "$PH_LIB"; do
    [ -e "$f" ] || lc_fail "missing $f (build first)"
done
command -v curl >/dev/null || lc_fail "curl is not installed"

ph_need_go() {
    command -v go >/dev/null 2>&1 || lc_skip "go (Debian golang-go) is not installed"
    export HOME="$LC_TMP/home" GOCACHE="$LC_TMP/gocache" GOPATH="$LC_TMP/gopath"
    export PPROF_TMPDIR="$LC_TMP/pprof" PPROF_BINARY_PATH="$LC_TMP/no-binaries" GOTOOLCHAIN=local
    mkdir -p "$HOME" "$PPROF_TMPDIR" "$PPROF_BINARY_PATH"
}

ph_pprof() {
    (cd "$LC_TMP" && timeout 120 go tool pprof "$@") 2>"$LC_TMP/pprof.err" ||
        lc_fail "go tool pprof $*: $(cat "$LC_TMP/pprof.err")"
}

ph_get() {
    local url=$1
    shift
    curl -s -D "$LC_TMP/headers" -o "$LC_TMP/body" -w '%{http_code}' --max-time 20 "$@" "$url"
}

ph_expect_error() {
    local url=$1 want=$2 words=$3 got
    got=$(ph_get "$url")
    [ "$got" = "$want" ] || lc_fail "$url answered $got, want $want: $(cat "$LC_TMP/body")"
    grep -qi '^Content-Type: text/plain' "$LC_TMP/headers" || lc_fail "$url: not text/plain"
    grep -qi '^X-Go-Pprof: 1' "$LC_TMP/headers" || lc_fail "$url: no X-Go-Pprof: 1"
    grep -qi '^Content-Disposition' "$LC_TMP/headers" && lc_fail "$url: an error with a file name"
    grep -qF -- "$words" "$LC_TMP/body" || lc_fail "$url: the reason lacks '$words': $(cat "$LC_TMP/body")"
}

ph_expect() {
    local f=$1 pat
    shift
    for pat in "$@"; do
        grep -Eq -- "$pat" "$f" || { cat "$f" >&2; lc_fail "no line of $f matches '$pat'"; }
    done
}

ph_load() {
    local url=$1 n=$2 args=() i
    for i in $(seq "$n"); do args+=("$url"); done
    curl -s --max-time 60 "${args[@]}" >/dev/null || lc_fail "load on $url failed"
}

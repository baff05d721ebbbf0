#!/usr/bin/env bash
# Every program answers --version ("PROG (leakcase) X.Y", exit 0) and --help (its usage on
# stdout, exit 0), and words every error with its own name first ("PROG: ..." or
# "loadgen diff: ..."), never with the path it was run by.
# usage: cli.sh PROGRAM_PATH...
set -u
. "$(dirname "$0")/../lib.sh"
version=""
for path in "$@"; do
    prog=$(basename "$path")
    out=$("$path" --version) || lc_fail "$prog --version: exit $?"
    [[ "$out" =~ ^$prog\ \(leakcase\)\ ([0-9]+\.[0-9]+[^ ]*)$ ]] || lc_fail "$prog --version: '$out'"
    [ -z "$version" ] || [ "$version" = "${BASH_REMATCH[1]}" ] || lc_fail "$prog: another version"
    version=${BASH_REMATCH[1]}
    "$path" --help >"$LC_TMP/help" || lc_fail "$prog --help: exit $?"
    head -1 "$LC_TMP/help" | grep -q "^usage: $prog " || lc_fail "$prog --help: $(head -1 "$LC_TMP/help")"
    s=0
    "$path" --no-such-flag >/dev/null 2>"$LC_TMP/err" || s=$?
    [ "$s" != 0 ] || lc_fail "$prog --no-such-flag: exit 0"
    head -1 "$LC_TMP/err" | grep -q "^$prog: .*--no-such-flag" ||
        lc_fail "$prog --no-such-flag: first line '$(head -1 "$LC_TMP/err")'"
    if grep -q "$path" "$LC_TMP/err"; then
        lc_fail "$prog names itself by its path: $(cat "$LC_TMP/err")"
    fi
    echo "ok: $prog $version"
    if [ "$prog" = loadgen ]; then
        for sub in diff plot; do
            "$path" "$sub" --no-such-flag >/dev/null 2>"$LC_TMP/err" && lc_fail "loadgen $sub: exit 0"
            head -1 "$LC_TMP/err" | grep -q "^loadgen $sub: .*--no-such-flag" ||
                lc_fail "loadgen $sub --no-such-flag: '$(head -1 "$LC_TMP/err")'"
        done
        "$path" --rate >/dev/null 2>"$LC_TMP/err" && lc_fail "loadgen --rate: exit 0"
        head -1 "$LC_TMP/err" | grep -q "^loadgen: option '--rate' requires an argument" ||
            lc_fail "loadgen --rate: '$(head -1 "$LC_TMP/err")'"
    fi
done

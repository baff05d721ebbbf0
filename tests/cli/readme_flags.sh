#!/usr/bin/env bash
# Every flag a program lists in --help is in README.md where its flags are listed: the servers'
# in the flag table ("| `--flag"), loadgen's and heapprof's in their synopsis or prose (the
# README has no table for them), loadgen's subcommands' too. A flag added to --help and not to
# the README fails here.
# usage: readme_flags.sh README.md PROGRAM_PATH...
set -u
. "$(dirname "$0")/../lib.sh"
readme=$1
shift
missing=""
check() { # check PROG HELP_FILE PATTERN_PREFIX
    local prog=$1 help=$2 prefix=$3 flag
    for flag in $(grep -oE -- '--[a-z][a-z-]*[a-z]' "$help" | sort -u); do
        case $flag in --help | --version) continue ;; esac
        grep -qE -- "$prefix$flag([^a-z-]|\$)" "$readme" || missing+=" $prog:$flag"
    done
}
for path in "$@"; do
    prog=$(basename "$path")
    "$path" --help >"$LC_TMP/help" 2>&1 || lc_fail "$prog --help: exit $?"
    case $prog in
    leaky | fixed) check "$prog" "$LC_TMP/help" '^\| `' ;;
    *) check "$prog" "$LC_TMP/help" '' ;;
    esac
    if [ "$prog" = loadgen ]; then
        for sub in diff plot verdict; do
            "$path" "$sub" --help >"$LC_TMP/help" 2>&1 || lc_fail "loadgen $sub --help: exit $?"
            check "loadgen-$sub" "$LC_TMP/help" ''
        done
    fi
done
[ -z "$missing" ] || lc_fail "flags in --help but not in README.md:$missing"
echo "ok: every flag of $* is in README.md"

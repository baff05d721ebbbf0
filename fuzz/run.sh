#!/usr/bin/env bash
# fuzz/run.sh BUILD_DIR SECONDS [TARGET...]: fuzz each target (default: all of fuzz/CMakeLists.txt)
# for SECONDS with libFuzzer, from its committed corpus and regression inputs, and print one
# markdown row per target: runs, execs/s, coverage (edges) and features at the end, corpus size,
# and the result. BUILD_DIR is a LEAKCASE_FUZZ=ON build (bin/fuzz_NAME). The committed inputs
# are only read: new inputs go to BUILD_DIR/fuzz-work/NAME/corpus, a crashing input to
# BUILD_DIR/fuzz-work/NAME/ with the log (add it to fuzz/regress/NAME once the bug is fixed).
# Exit 1 when any target found a crash, a leak, a timeout or a broken property.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1 seconds=$2
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] ||
    read -r -a targets <<<"$(sed -n 's/^set(LC_FUZZ_TARGETS \(.*\))$/\1/p' "$here/CMakeLists.txt")"
status=0
echo "| target | seconds | runs | execs/s | coverage (edges) | features | corpus | result |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
for t in "${targets[@]}"; do
    exe="$build/bin/fuzz_$t" work="$build/fuzz-work/$t"
    [ -x "$exe" ] || { echo "fuzz/run.sh: $exe is missing (build with LEAKCASE_FUZZ=ON)" >&2; exit 2; }
    rm -rf "$work" && mkdir -p "$work/corpus"
    dirs=("$here/corpus/$t")
    [ -d "$here/regress/$t" ] && dirs+=("$here/regress/$t")
    # -close_fd_mask=2: the targets' own messages for bad input stay out of libFuzzer's report;
    # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: a leak or a bomb is a finding.
    "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -close_fd_mask=2 \
        -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "${dirs[@]}" \
        >"$work/log" 2>&1
    rc=$?
    last=$(grep -E '^#[0-9]+' "$work/log" | tail -1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
    if [ "$rc" -eq 0 ]; then
        result="no finding"
    else
        status=1
        artifact=$(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | head -1)
        result="FAILED (exit $rc): ${artifact:-see $work/log}"
        grep -E 'property broken|ERROR:|SUMMARY' "$work/log" | head -5 >&2
    fi
    echo "| $t | $seconds | ${runs:-?} | ${eps:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $result |"
done
exit "$status"

#!/usr/bin/env bash
# Fuzzes each target for a fixed time, one after another, and fails on any crash.
#
#   fuzz/run.sh [--tolerate-known-bugs] [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); all targets unless some are named. Builds libFuzzer
# binaries in build-fuzz/ (CXX=clang++, -Dfuzzers=true) when needed. Each target fuzzes a
# scratch corpus in build-fuzz/corpus/<target> seeded from fuzz/corpus/ and fuzz/regressions/
# (fuzz/corpus/ stays as it is; the scratch corpus carries over to later runs). A crash,
# timeout or out-of-memory input is kept in fuzz/artifacts/<target>/; copy it into
# fuzz/regressions/<target>/ so the ordinary test run replays it. Ends with a table of
# exec/s, executions and coverage (cov: edges, ft: features) per target.
#
# --tolerate-known-bugs builds in build-fuzz-tolerant/ with the checks for core bugs already
# saved in fuzz/regressions/ turned off (FUZZ_CHECK_KNOWN_BUG), to fuzz on past them.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$root/build-fuzz
cpp_args=()
if [[ ${1:-} == --tolerate-known-bugs ]]; then
    build=$root/build-fuzz-tolerant
    cpp_args=(-Dcpp_args=-DTCPCAN_FUZZ_TOLERATE_KNOWN_BUGS)
    shift
fi
duration=${1:-60}
[[ $duration =~ ^[0-9]+$ ]] || { echo "usage: $0 [--tolerate-known-bugs] [SECONDS] [TARGET...]" >&2; exit 2; }
shift || true
all_targets=(fuzz_decoder fuzz_negotiation fuzz_session fuzz_session_pair fuzz_session_resume fuzz_resume_peer fuzz_filter_text fuzz_candump_line fuzz_config_files)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")

if [[ ! -f $build/build.ninja ]]; then
    CXX=${FUZZ_CXX:-clang++} meson setup "$build" "$root" -Dfuzzers=true "${cpp_args[@]}"
else
    meson configure "$build" -Dfuzzers=true "${cpp_args[@]}"
fi
# Only the fuzz targets: the rest of the project need not build with clang.
ninja -C "$build" "${targets[@]/#/fuzz/}"

# Value of `key = value` in fuzz/<target>.options ([libfuzzer] section; one section only).
option() { sed -n "s/^$2[[:space:]]*=[[:space:]]*//p" "$here/$1.options" 2>/dev/null | head -1; }

failed=0
rows=()
for t in "${targets[@]}"; do
    corpus=$build/corpus/$t
    artifacts=$here/artifacts/$t
    log=$build/fuzz-$t.log
    mkdir -p "$corpus" "$artifacts"
    cp -n "$here/corpus/$t"/* "$corpus"/ 2>/dev/null || true
    cp -n "$here/regressions/$t"/* "$corpus"/ 2>/dev/null || true
    args=(-max_total_time="$duration" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
          -artifact_prefix="$artifacts/")
    max_len=$(option "$t" max_len)
    [[ -n $max_len ]] && args+=(-max_len="$max_len")
    [[ -f $here/$t.dict ]] && args+=(-dict="$here/$t.dict")
    echo "== $t: fuzzing for ${duration}s (log: $log)"
    status=ok
    if ! nice -n 10 "$build/fuzz/$t" "${args[@]}" "$corpus" >"$log" 2>&1; then
        status=FAILED
        failed=1
        grep -E "invariant violated|ERROR:|SUMMARY:|Test unit written" "$log" || tail -20 "$log"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    rows+=("$(printf '%-20s %9s %13s %6s %7s  %s' "$t" "${speed:-?}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$status")")
done

echo
echo "fuzzed ${duration}s per target on $(date -u +%Y-%m-%d)"
printf '%-20s %9s %13s %6s %7s  %s\n' target exec/s executions cov ft result
printf '%s\n' "${rows[@]}"
if [[ $failed -ne 0 ]]; then
    echo "crashing inputs are in $here/artifacts/" >&2
fi
exit "$failed"

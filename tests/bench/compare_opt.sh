#!/usr/bin/env bash
# Compares bench_core built at -O2 against bench_core built at -O3 (issue 14: "-O3 no slower
# than -O2 anywhere in bench_core"), as ratios measured in one run.
#
#   tests/bench/compare_opt.sh [--compiler gcc|clang] [--rounds N] [--min-time SECONDS]
#                              [--filter REGEX] [--out DIR] [--tree DIR] [--base-tree DIR]
#
# It configures two build folders from this source tree (<tree>/build-compare-<compiler>/a
# for -O2 and .../b for -O3, or --out DIR), same compiler, both -Db_ndebug=true, builds only
# bench_core in each, then runs the two binaries ALTERNATELY: N rounds (default 5), and in
# each round every benchmark on its own in both builds back to back (which build goes first
# alternates), --benchmark_min_time=0.3 each. The host is shared and noisy (other work,
# a VM), so nothing but medians is compared and each pair of runs is seconds apart. For each
# benchmark it prints the median items/s of each build (median CPU ns where a benchmark counts
# no items), their ratio O3/O2, the median of the ratios of the N back-to-back pairs, the
# ratio of the fastest run of each (the least disturbed), and the range of the pair ratios:
# a range wider than the difference you are looking for means "measure again, more rounds".
# With the defaults the script takes about three minutes, plus the two builds the first time
# (later runs rebuild only what changed).
#
# --tree DIR measures another checkout's -O2 and -O3 (default: the tree holding this script),
# for instance main's before a change.
# --base-tree DIR compares another checkout's -O2 (for instance main's) against this tree's
# -O2, to check that a change drops nothing at -O2 ("base" and "this").
# --compiler clang builds with clang++ (CXX=clang++), default gcc (g++).
# Every run's JSON stays in the output folder (round-<n>-<a|b>-<benchmark index>.json).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
compiler=gcc
rounds=5
min_time=0.3
filter=.
out=
base_tree=

usage() { sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --compiler) compiler=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --min-time) min_time=${2:?}; shift 2 ;;
        --filter) filter=${2:?}; shift 2 ;;
        --out) out=${2:?}; shift 2 ;;
        --tree) here=$(cd "${2:?}" && pwd); shift 2 ;;
        --base-tree) base_tree=$(cd "${2:?}" && pwd); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare_opt.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

case "$compiler" in
    gcc) cxx=g++ ;;
    clang) cxx=clang++ ;;
    *) echo "compare_opt.sh: --compiler must be gcc or clang, not '$compiler'" >&2; exit 2 ;;
esac
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
    echo "compare_opt.sh: --rounds must be a positive whole number, not '$rounds'" >&2
    exit 2
fi
if ! [[ "$min_time" =~ ^[0-9]*\.?[0-9]+$ ]]; then
    echo "compare_opt.sh: --min-time must be a number of seconds, not '$min_time'" >&2
    exit 2
fi

if [[ -n "$base_tree" ]]; then
    out=${out:-$here/build-compare-base-$compiler}
    a_src=$base_tree; a_opt=2; a_name="base -O2"
    b_src=$here; b_opt=2; b_name="this -O2"
    ratio_name="this/base"
else
    out=${out:-$here/build-compare-$compiler}
    a_src=$here; a_opt=2; a_name="-O2"
    b_src=$here; b_opt=3; b_name="-O3"
    ratio_name="O3/O2"
fi
mkdir -p "$out"

# setup_and_build <source tree> <optimization> <build folder>
setup_and_build() {
    local src=$1 opt=$2 dir=$3
    if [[ ! -f "$dir/build.ninja" ]]; then
        CXX=$cxx meson setup "$dir" "$src" -Doptimization="$opt" -Db_ndebug=true >"$dir.setup.log" 2>&1 ||
            { cat "$dir.setup.log" >&2; exit 1; }
    fi
    nice meson compile -C "$dir" bench_core >"$dir.build.log" 2>&1 ||
        { cat "$dir.build.log" >&2; exit 1; }
    if [[ ! -x "$dir/tests/bench/bench_core" ]]; then
        echo "compare_opt.sh: no bench_core in $dir (is libbenchmark-dev installed?)" >&2
        exit 1
    fi
}

echo "building bench_core with $cxx: $a_name, $b_name (in $out)" >&2
setup_and_build "$a_src" "$a_opt" "$out/a"
setup_and_build "$b_src" "$b_opt" "$out/b"

# Each benchmark on its own, the two builds back to back, so a pair of runs is a second or
# two apart whatever the machine does over the minutes of the whole script.
mapfile -t names < <("$out/a/tests/bench/bench_core" --benchmark_list_tests=true --benchmark_filter="$filter")
if [[ ${#names[@]} -eq 0 ]]; then
    echo "compare_opt.sh: no benchmark matches '$filter'" >&2
    exit 1
fi
rm -f "$out"/round-*.json "$out"/round-*.log
for ((round = 1; round <= rounds; ++round)); do
    echo "round $round/$rounds (${#names[@]} benchmarks, both builds each)" >&2
    for ((i = 0; i < ${#names[@]}; ++i)); do
        # Alternate which build goes first too, so neither always runs on a warmer machine.
        if (((round + i) % 2)); then order="a b"; else order="b a"; fi
        for side in $order; do
            "$out/$side/tests/bench/bench_core" --benchmark_filter="^${names[i]}\$" \
                --benchmark_min_time="$min_time" \
                --benchmark_out="$out/round-$round-$side-$i.json" --benchmark_out_format=json \
                >>"$out/round-$round-$side.log" 2>&1
        done
    done
done

python3 - "$out" "$rounds" "$a_name" "$b_name" "$ratio_name" "$cxx" <<'EOF'
import glob, json, statistics, sys
out, rounds, a_name, b_name, ratio_name, cxx = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]

def load(side):
    runs = []  # one {name: (value, unit)} per round
    for r in range(1, rounds + 1):
        run = {}
        paths = glob.glob(f"{out}/round-{r}-{side}-*.json")
        for path in sorted(paths, key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0])):
            with open(path) as f:
                doc = json.load(f)
            for b in doc["benchmarks"]:
                if b.get("run_type", "iteration") != "iteration":
                    continue
                if "items_per_second" in b:
                    run[b["name"]] = (b["items_per_second"], "items/s")
                else:
                    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
                    run[b["name"]] = (b["cpu_time"] * scale, "ns")
        runs.append(run)
    return runs

a, b = load("a"), load("b")
names = [n for n in a[0] if all(n in run for run in a + b)]
width = max([len(n) for n in names] + [9])
print(f"bench_core, {cxx}, {rounds} alternating rounds, medians (the host is shared: "
      f"compare ratios, not absolute figures)")
print(f"{'benchmark':<{width}}  {'unit':>7}  {a_name:>10}  {b_name:>10}  {ratio_name:>9}  {'pairs':>6}  {'best':>6}  pair range")
for n in names:
    unit = a[0][n][1]
    va = statistics.median(run[n][0] for run in a)
    vb = statistics.median(run[n][0] for run in b)
    per_round = [rb[n][0] / ra[n][0] for ra, rb in zip(a, b)]
    best = max if unit == "items/s" else min  # the run the machine disturbed least
    best_ratio = best(run[n][0] for run in b) / best(run[n][0] for run in a)
    def fmt(v):
        return f"{v / 1e6:9.2f}M" if unit == "items/s" else f"{v:9.1f} "
    print(f"{n:<{width}}  {unit:>7}  {fmt(va):>10}  {fmt(vb):>10}  {vb / va:9.3f}  "
          f"{statistics.median(per_round):6.3f}  {best_ratio:6.3f}  {min(per_round):.3f}-{max(per_round):.3f}")
print(f"({ratio_name}: of the medians; pairs: median of the ratios of the runs made back to back;")
print(f" best: of the fastest run of each; pair range: lowest and highest pair ratio.")
print(f" items/s: above 1 means {b_name} is faster; ns: below 1 means faster)")
EOF

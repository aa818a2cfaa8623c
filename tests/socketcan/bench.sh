#!/usr/bin/env bash
# The real-vcan benchmark (issue 14): tcpcan carrying cangen traffic from one vcan interface
# to another, beside vcan alone and the kernel's cangw, and optionally a second tcpcan binary
# in the same boot. Natively when this host can create vcan interfaces (root), otherwise in
# the SocketCAN suite's qemu VM (vm.sh). The scenarios and what is measured are described in
# bench_scenarios.sh. It measures and reports; it asserts nothing about speed.
#
#   bench.sh [--probe BENCH_PROBE] [--baseline TCPCAN2] [--out DIR] [--repeat R]
#            [--only SCENARIO,...] TCPCAN
#
#   TCPCAN          the tcpcan program to measure (e.g. build/tools/tcpcan)
#   --probe P       the bench_probe tool (default: tests/bench/bench_probe beside TCPCAN's build)
#   --baseline P    a second tcpcan to run in the same boot (default $TCPCAN_BENCH_BASELINE);
#                   the table shows tcpcan/baseline ratios
#   --out DIR       where vcan-bench.tsv, vcan-bench.txt and vcan-bench.console.log go
#                   (default: the current folder)
#   --repeat R      run every scenario R times (default $TCPCAN_BENCH_REPEAT or 1); the table
#                   shows medians
#   --only LIST     only these scenarios (classic-1000 ... fd-max, latency-classic, latency-fd)
#
# Environment: TCPCAN_BENCH_SECONDS (traffic per rate run, default 4),
# TCPCAN_BENCH_OVERLOAD_FRAMES (default 40000), TCPCAN_BENCH_LATENCY_FRAMES (default 4000),
# TCPCAN_BENCH_LATENCY_RATE (default 1000),
# TCPCAN_BENCH_ARGS / TCPCAN_BENCH_BASELINE_ARGS (more options for the measured / the baseline
# tcpcan's server and client, e.g. "--latency-budget 1"), TCPCAN_BENCH_POLICY /
# TCPCAN_BENCH_BASELINE_POLICY=batch (run that tcpcan under `chrt --batch 0`),
# TCPCAN_BENCH_NICE / TCPCAN_BENCH_BASELINE_NICE=N (and under `nice -n N`),
# TCPCAN_BENCH_LOAD=N (N spinning processes beside every run: a busy machine),
# TCPCAN_BENCH_SYSCALLS=0 (no ftrace), TCPCAN_BENCH_GENERATOR=cangen (cangen paces the rates
# instead of bench_probe send), TCPCAN_SOCKETCAN_MODE=auto|native|vm, and vm.sh's
# TCPCAN_VM_* (the VM's time limit defaults to 240 s + 600 s per repeat).
# TCPCAN_BENCH_KERNEL_ARGS: the VM kernel's extra arguments, by default
# `clocksource=tsc tsc=reliable`: the emulated CPU's TSC is otherwise not trusted, the VM falls
# back to the HPET, and then every clock_gettime() is a real system call (as it is not on
# hardware with a usable TSC or the arm architected timer).
# TCPCAN_BENCH_ICOUNT: in the VM, the guest's time counts instructions (vm.sh's
# TCPCAN_VM_ICOUNT), by default shift 1: 2 ns per instruction, about a Raspberry Pi Zero's
# speed. Then the CPU time the guest charges a process is its instructions, kernel included,
# whatever else the host is doing, so runs repeat and ratios are not host noise. It needs
# qemu's single-threaded TCG and one vCPU (two vCPUs with icount hang at SMP bring-up in
# qemu 7.2; a Pi Zero has one core as well). `off` gives the real-time, 2-vCPU VM (KVM where
# usable), where CPU figures follow the host's load.
# Exit status: 0 when the benchmark ran (whatever it measured), 2 for bad arguments, 99 when
# the VM failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'bench.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }
absolute() { printf '%s/%s' "$(cd "$(dirname "$1")" && pwd)" "$(basename "$1")"; }

probe= baseline=${TCPCAN_BENCH_BASELINE:-} out=. repeat=${TCPCAN_BENCH_REPEAT:-1} only=${TCPCAN_BENCH_ONLY:-}
while (($#)); do
    case $1 in
        --probe) probe=${2:?--probe needs a path}; shift 2 ;;
        --baseline) baseline=${2:?--baseline needs a path}; shift 2 ;;
        --out) out=${2:?--out needs a folder}; shift 2 ;;
        --repeat) repeat=${2:?--repeat needs a number}; shift 2 ;;
        --only) only=${2:?--only needs scenario names}; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) break ;;
    esac
done
(($# == 1)) || die "give exactly one tcpcan program (see --help)"
tcpcan=$1
[[ -f $tcpcan && -x $tcpcan ]] || die "$tcpcan is not an executable file"
tcpcan=$(absolute "$tcpcan")
[[ -n $probe ]] || probe=$(dirname "$tcpcan")/../tests/bench/bench_probe
[[ -f $probe && -x $probe ]] || die "no bench_probe at $probe (build it: meson compile -C BUILD tests/bench/bench_probe, or give --probe)"
probe=$(absolute "$probe")
if [[ -n $baseline ]]; then
    [[ -f $baseline && -x $baseline ]] || die "baseline $baseline is not an executable file"
    baseline=$(absolute "$baseline")
fi
[[ $repeat =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive whole number"
mkdir -p "$out"
out=$(cd "$out" && pwd)

scenario_args=(--repeat "$repeat")
[[ -n $only ]] && scenario_args+=(--only "$only")

can_native() {
    (($(id -u) == 0)) || return 1
    command -v ip >/dev/null && command -v cangen >/dev/null && command -v cangw >/dev/null || return 1
    modprobe vcan 2>/dev/null || [[ -d /sys/module/vcan ]] || return 1
    modprobe can_gw 2>/dev/null || [[ -d /sys/module/can_gw ]] || return 1
    ip link add dev tcpcan-probe type vcan 2>/dev/null || return 1
    ip link del dev tcpcan-probe 2>/dev/null || true
}

run_native() {  # in a network namespace of its own, so the host's interfaces stay untouched
    local ns="tcpcan-bench-$$" i b=()
    [[ -n $baseline ]] && b=(--baseline "$baseline")
    ip netns add "$ns" || die "cannot create network namespace $ns"
    # shellcheck disable=SC2064
    trap "ip netns del '$ns' 2>/dev/null" EXIT
    ip -n "$ns" link set dev lo up
    for i in 0 1; do
        ip -n "$ns" link add dev "vcan$i" type vcan
        ip -n "$ns" link set dev "vcan$i" mtu 72
        ip -n "$ns" link set dev "vcan$i" up
    done
    log "native run in network namespace $ns"
    ip netns exec "$ns" bash "$HERE/bench_scenarios.sh" --probe "$probe" --tcpcan "$tcpcan" "${b[@]}" \
        --ifs vcan0,vcan1 --out "$out" "${scenario_args[@]}" | tee "$out/vcan-bench.console.log"
}

run_vm() {
    local icount=${TCPCAN_BENCH_ICOUNT:-1}
    if [[ $icount != off ]]; then
        [[ $icount =~ ^[0-9]$ ]] || die "TCPCAN_BENCH_ICOUNT must be a shift from 0 to 9, or off"
        export TCPCAN_VM_ACCEL=tcg TCPCAN_VM_ICOUNT=$icount TCPCAN_VM_SMP=1
        log "instruction-counted time in the VM: 2^$icount ns per instruction, one vCPU (TCPCAN_BENCH_ICOUNT=off for real time)"
    fi
    local adds=(--add "$tcpcan=tcpcan" --add "$probe=bench_probe" --add "$HERE/bench_scenarios.sh") b=() envs=() v rc
    if [[ -n $baseline ]]; then
        adds+=(--add "$baseline=tcpcan-baseline")
        b=(--baseline /opt/tcpcan-test/tcpcan-baseline)
    fi
    for v in TCPCAN_BENCH_SECONDS TCPCAN_BENCH_OVERLOAD_FRAMES TCPCAN_BENCH_LATENCY_FRAMES TCPCAN_BENCH_LATENCY_RATE \
        TCPCAN_BENCH_SYSCALLS TCPCAN_BENCH_GENERATOR TCPCAN_BENCH_ARGS TCPCAN_BENCH_BASELINE_ARGS \
        TCPCAN_BENCH_POLICY TCPCAN_BENCH_BASELINE_POLICY TCPCAN_BENCH_NICE TCPCAN_BENCH_BASELINE_NICE TCPCAN_BENCH_LOAD; do
        [[ -n ${!v:-} ]] && envs+=(--env "$v=${!v}")
    done
    set +e
    bash "$HERE/vm.sh" "${adds[@]}" "${envs[@]}" --kernel-args "${TCPCAN_BENCH_KERNEL_ARGS-clocksource=tsc tsc=reliable}" --timeout "${TCPCAN_VM_TIMEOUT:-$((240 + 600 * repeat))}" -- \
        bash /opt/tcpcan-test/bench_scenarios.sh --probe /opt/tcpcan-test/bench_probe --tcpcan /opt/tcpcan-test/tcpcan \
        "${b[@]}" --ifs vcan0,vcan1 "${scenario_args[@]}" | tee "$out/vcan-bench.console.log"
    rc=${PIPESTATUS[0]}
    set -e
    ((rc == 0)) || return "$rc"
    # The VM has no shared folder: cut the results out of its console.
    sed -n '/^=== BENCH-TSV-BEGIN$/,/^=== BENCH-TSV-END$/{/^=== /d;p}' "$out/vcan-bench.console.log" >"$out/vcan-bench.tsv"
    sed -n '/^=== BENCH-TABLE-BEGIN$/,/^=== BENCH-TABLE-END$/{/^=== /d;p}' "$out/vcan-bench.console.log" >"$out/vcan-bench.txt"
}

mode=${TCPCAN_SOCKETCAN_MODE:-auto}
case $mode in
    native) can_native || die "native mode needs root, vcan, can-gw and can-utils"; run_native ;;
    vm) run_vm ;;
    auto) if can_native; then run_native; else log "this host cannot create vcan interfaces; using the VM (vm.sh)"; run_vm; fi ;;
    *) die "TCPCAN_SOCKETCAN_MODE must be auto, native or vm" ;;
esac
[[ -s $out/vcan-bench.tsv ]] || { log "no results (see $out/vcan-bench.console.log)"; exit 1; }
log "results: $out/vcan-bench.tsv, $out/vcan-bench.txt (console: $out/vcan-bench.console.log)"

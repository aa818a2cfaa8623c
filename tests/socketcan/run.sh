#!/usr/bin/env bash
# Runs the SocketCAN scenarios (scenarios.sh) against a tcpcan binary, on real vcan
# interfaces: natively when this host can create them, otherwise inside a throw-away VM
# (vm.sh: a Debian kernel under qemu).
#
#   run.sh TCPCAN_BINARY [SCENARIO...]
#   run.sh --list
#
# With no SCENARIO, all of them run (scenarios.sh --list names them); `smoke` needs no
# working tcpcan (try `run.sh /bin/true smoke`).
#
# Environment:
#   TCPCAN_SOCKETCAN_MODE   auto (default), native or vm
#   TCPCAN_SCENARIO_TIMEOUT per-scenario limit in seconds (default 90)
#   TCPCAN_VM_*             see vm.sh (cache folder, accelerator, timeout, memory)
#   TCPCAN_LOG_LEVEL, TCPCAN_PORT_BASE, TCPCAN_STALL_SECONDS, TCPCAN_PIN_CPUS,
#   TCPCAN_KEEP_WORK        passed to scenarios.sh (see there)
#
# Native mode needs root, `modprobe vcan` and can-utils. It makes a network namespace of its
# own with vcan0 vcan1 vcan2 in it (so nothing on the host is touched, and TCP stays on that
# namespace's 127.0.0.1); without `ip netns` (or with TCPCAN_NATIVE_NETNS=0) it makes
# uniquely named vcan interfaces in the host's namespace instead. Both are deleted at the end.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'run.sh: %s\n' "$*" >&2; }

if [[ ${1:-} == --list ]]; then exec bash "$HERE/scenarios.sh" --list; fi
if [[ $# -lt 1 || ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    [[ $# -ge 1 ]] && exit 0 || exit 2
fi
bin=$1
shift
[[ -f $bin && -x $bin ]] || { log "error: $bin is not an executable file"; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

passthrough_env=()
for v in TCPCAN_SCENARIO_TIMEOUT TCPCAN_LOG_LEVEL TCPCAN_PORT_BASE TCPCAN_STALL_SECONDS TCPCAN_PIN_CPUS \
    TCPCAN_KEEP_WORK; do
    [[ -n ${!v:-} ]] && passthrough_env+=("$v=${!v}")
done

can_native() {
    (($(id -u) == 0)) || return 1
    command -v ip >/dev/null || return 1
    modprobe vcan 2>/dev/null || [[ -d /sys/module/vcan ]] || return 1
    ip link add dev tcpcan-probe type vcan 2>/dev/null || return 1
    ip link del dev tcpcan-probe 2>/dev/null || true
    return 0
}

run_native() {
    local c
    for c in cansend candump cangen canplayer; do
        command -v "$c" >/dev/null && continue
        log "can-utils missing; installing"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q can-utils >&2 ||
            { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q can-utils >&2; } ||
            { log "error: cannot install can-utils"; exit 2; }
        break
    done
    modprobe can_raw 2>/dev/null || true
    modprobe sch_tbf 2>/dev/null || true
    local ns="tcpcan-test-$$" rc i
    if [[ ${TCPCAN_NATIVE_NETNS:-1} != 0 ]] && ip netns add "$ns" 2>/dev/null; then
        # shellcheck disable=SC2064
        trap "ip netns del '$ns' 2>/dev/null" EXIT
        ip -n "$ns" link set dev lo up
        for i in 0 1 2; do
            ip -n "$ns" link add dev "vcan$i" type vcan
            ip -n "$ns" link set dev "vcan$i" mtu 72
            ip -n "$ns" link set dev "vcan$i" up
        done
        log "native run in network namespace $ns (vcan0 vcan1 vcan2)"
        set +e
        ip netns exec "$ns" env "${passthrough_env[@]}" bash "$HERE/scenarios.sh" --tcpcan "$bin" \
            --ifs vcan0,vcan1,vcan2 "$@"
        rc=$?
        set -e
        return "$rc"
    fi
    # No netns support: interfaces with names of our own in the host's namespace.
    local ifs=("tcv$$a" "tcv$$b" "tcv$$c")
    # shellcheck disable=SC2064
    trap "for i in ${ifs[*]}; do ip link del dev \$i 2>/dev/null; done" EXIT
    for i in "${ifs[@]}"; do
        ip link add dev "$i" type vcan
        ip link set dev "$i" mtu 72
        ip link set dev "$i" up
    done
    log "native run on ${ifs[*]} (no network namespace support)"
    set +e
    env "${passthrough_env[@]}" bash "$HERE/scenarios.sh" --tcpcan "$bin" --ifs "$(IFS=,; echo "${ifs[*]}")" "$@"
    rc=$?
    set -e
    return "$rc"
}

run_vm() {
    local args=() e
    for e in "${passthrough_env[@]}"; do args+=(--env "$e"); done
    exec bash "$HERE/vm.sh" --add "$bin=tcpcan" --add "$HERE/scenarios.sh" "${args[@]}" -- \
        bash /opt/tcpcan-test/scenarios.sh --tcpcan /opt/tcpcan-test/tcpcan --ifs vcan0,vcan1,vcan2 "$@"
}

mode=${TCPCAN_SOCKETCAN_MODE:-auto}
case $mode in
    native) can_native || { log "error: native mode needs root and a working 'modprobe vcan'"; exit 2; }
            run_native "$@" ;;
    vm) run_vm "$@" ;;
    auto) if can_native; then run_native "$@"; else
              log "this host cannot create vcan interfaces; using the VM (vm.sh)"
              run_vm "$@"
          fi ;;
    *) log "error: TCPCAN_SOCKETCAN_MODE must be auto, native or vm"; exit 2 ;;
esac

#!/usr/bin/env bash
# SocketCAN scenarios for tcpcan against the real kernel, with can-utils as the independent
# peer. Runs inside the test VM (vm.sh) or natively (run.sh makes the vcan interfaces).
#
#   scenarios.sh [--tcpcan PATH] [--ifs IF0,IF1,IF2] [--timeout SEC] [--list] [NAME...]
#
#   --tcpcan PATH   the bridge under test (default $TCPCAN, else `tcpcan` in PATH)
#   --ifs A,B,C     three vcan interfaces, up, MTU 72 (default $TCPCAN_IFS, else vcan0,vcan1,vcan2)
#   --timeout SEC   limit per scenario (default $TCPCAN_SCENARIO_TIMEOUT, else 90; veth_flaps twice that)
#   --list          print the scenario names and what each checks
#   NAME...         run only these scenarios (default: all, in the listed order)
#
# Every scenario prints `PASS name` or `FAIL name: reason`; the last line is
# `N passed, M failed`, and the exit status is 0 only if nothing failed.
# Environment: TCPCAN_LOG_LEVEL adds `--log-level X` to every tcpcan started;
# TCPCAN_PORT_BASE (default 23000) is the first TCP port used (10 per scenario);
# TCPCAN_KEEP_WORK=1 keeps the per-scenario folders (logs, candump captures);
# TCPCAN_STALL_SECONDS (default 5): how long a capture may stop growing before the frames
# still missing are declared lost; TCPCAN_PIN_CPUS=0: do not pin writers to CPUs (see pinned).
set -uo pipefail
export LC_ALL=C

SCENARIOS=(smoke frames legacy_cli burst proto_v1 filters timestamps two_clients slow_rx rx_overflow
    if_down_up if_recreate restart_client restart_server bitrate errors tls_psk two_buses socketcand cannelloni canip veth_flaps)
declare -A ABOUT=(
    [cannelloni]="cannelloni over TCP (IF0 server, IF1 client) and UDP (IF0 server with a fixed peer, IF2 client): the reference frames both ways, exact; 10,000 empty frames over TCP, none lost"
    [smoke]="cansend/candump on the first interface only: the kernel, vcan and can-utils work"
    [frames]="classic, extended, RTR, CAN FD (BRS, ESI), 8- and 64-byte frames: IF0 -> server -> TCP -> client -> IF1 and back"
    [legacy_cli]="tcpcan's original form (--serve / --host / --port canif) carries the same frames both ways"
    [burst]="cangen bursts of 10,000 frames each way (classic, then CAN FD with BRS): none lost, order kept"
    [proto_v1]="--protocol-version 1 on the server, then on the client: version 1 agreed, frames and a burst cross"
    [filters]="kernel-side --filter on server and client (ranges, x, id/mask, candump :, ~): only matching IDs cross"
    [timestamps]="--timestamps: a stdio client (--can -) prints the source kernel's receive timestamps to the microsecond"
    [two_clients]="one server, clients on IF1 and IF2: each gets every frame; each client's frames reach IF0"
    [slow_rx]="IF1 accepts frames slower than they arrive (tbf qdisc, txqueuelen 1) under a flood: no crash, delivered + dropped = sent"
    [rx_overflow]="the server is stopped (SIGSTOP) while cangen floods IF0 until its socket's receive queue overflows: the kernel's drops reach the statistics (SO_RXQ_OVFL) and the log, from_bus + bus_rx_overflow = frames on IF0"
    [if_down_up]="IF1, then IF0, goes down and up while bridging: the bridge logs it and resumes both ways"
    [if_recreate]="IF1 is deleted and created again while bridging: the bridge logs it and resumes"
    [restart_client]="the client is killed (SIGKILL) and restarted: the server serves the new one"
    [restart_server]="the server is killed (SIGKILL) and restarted on the same port: the client reconnects"
    [bitrate]="--can-bitrate on a vcan: exit status 1 and a message that the bitrate cannot be set"
    [errors]="a missing interface exits 1 and names it; client --no-retry without a server exits non-zero"
    [canip]="canip_peer's protocol on the shared port: a canip client (--dialect canip) and a tcpcan client on one server; classic frames exact both ways, FD and RTR dropped towards canip and counted; then a client without --dialect takes a canip listener's greeting"
    [two_buses]="one server on IF0 and IF1 (--can twice), a client joining each by name (--remote-bus), cangen on all four buses: every frame reaches its own bus's other side, none crosses"
    [tls_psk]="TLS 1.3 with pre-shared keys between two bridges: the reference frames both ways, identity in the logs; a wrong key is refused by name while they keep bridging"
    [socketcand]="a socketcand client (bash on /dev/tcp) opens IF1 of a two-bus server: its sends reach IF1 exactly, IF1's frames reach it as < frame >, IF0's never"
    [veth_flaps]="server and client in two network namespaces joined by a veth pair, a vcan in each, cangen both ways (heartbeat 0.5 s): the veth link down for 2 s, then the client stopped (SIGSTOP) for 3 s; each time the connection ends, the session resumes and each far vcan receives every frame exactly once, in order"
)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")

TCPCAN=${TCPCAN:-tcpcan}
IFS_LIST=${TCPCAN_IFS:-vcan0,vcan1,vcan2}
SC_TIMEOUT=${TCPCAN_SCENARIO_TIMEOUT:-90}
declare -A TIMEOUT_FACTOR=([veth_flaps]=2)  # scenarios that do two runs' work get twice the limit
PORT_BASE=${TCPCAN_PORT_BASE:-23000}

# ======================================================================================
# Helpers used inside one scenario (each scenario runs in its own bash process, in $W)
# ======================================================================================
W=
declare -A PID=()     # name -> pid of every background process of the scenario
declare -A BRIDGE=()  # names of the tcpcan processes among them
STATUS=

say() { printf '  %s\n' "$*"; }

# Records the reason, stops the bridges still running (SIGTERM, so their final statistics
# lines land in their logs), prints the tail of every log of this scenario, and exits.
fail() {
    printf '%s\n' "$*" >"$W/reason"
    say "FAILED: $*"
    local f name
    for name in "${!BRIDGE[@]}"; do
        alive "$name" && kill -TERM "${PID[$name]}" 2>/dev/null
    done
    for name in "${!BRIDGE[@]}"; do
        alive "$name" && poll 3 eval "! kill -0 ${PID[$name]} 2>/dev/null"
    done
    for f in "$W"/*.log; do
        [[ -s $f ]] || continue
        say "--- last lines of $(basename "$f") ---"
        tail -n 12 "$f" | cut -c1-200 | sed 's/^/  | /'
    done
    exit 1
}

cleanup_scenario() {
    local name pid i
    for name in "${!PID[@]}"; do kill -CONT "${PID[$name]}" 2>/dev/null; kill -TERM "${PID[$name]}" 2>/dev/null; done
    for ((i = 0; i < 20 && ${#PID[@]} > 0; i++)); do
        for name in "${!PID[@]}"; do
            kill -0 "${PID[$name]}" 2>/dev/null || unset "PID[$name]"
        done
        ((${#PID[@]})) && sleep 0.1
    done
    for name in "${!PID[@]}"; do kill -KILL "${PID[$name]}" 2>/dev/null; done
    for name in "${NETNS[@]}"; do ip netns del "$name" 2>/dev/null; done
}

# poll SECS CMD...: runs CMD every 0.1 s until it succeeds (0) or SECS (wall clock) pass (1).
poll() {
    local end=$((SECONDS + $1))
    shift
    while :; do
        "$@" && return 0
        ((SECONDS >= end)) && return 1
        sleep 0.1
    done
}

alive() { [[ -n ${PID[$1]:-} ]] && kill -0 "${PID[$1]}" 2>/dev/null; }

# pinned CMD...: runs CMD on one CPU (round robin over the CPUs), for every process that
# writes frames to a vcan. vcan loops each frame back through the receive backlog of the CPU
# the writer is running on, and a backlog whose softirq is deferred (to ksoftirqd, or a vCPU
# the host has descheduled) is delivered late: a writer that migrates between CPUs in the
# middle of a batch can have its frames reordered by the kernel itself. That was seen once
# under TCG on a loaded host (the last of 21 frames written in one batch arrived first) and
# not reproduced on demand. One CPU per writer rules it out: each writer's frames stay in
# order, which is all the scenarios compare. TCPCAN_PIN_CPUS=0 turns this off.
NCPU=$(nproc 2>/dev/null || echo 1)
PIN_NEXT=0
PIN=()
pin_next() {  # sets PIN to the command prefix for the next writer
    PIN=()
    [[ ${TCPCAN_PIN_CPUS:-1} == 0 ]] && return 0
    command -v taskset >/dev/null || return 0
    PIN=(taskset -c $((PIN_NEXT % NCPU)))
    PIN_NEXT=$((PIN_NEXT + 1))
}
pinned() {  # foreground commands only (a background function would hide the real pid)
    pin_next
    "${PIN[@]}" "$@"
}

# spawn NAME CMD...: starts CMD (pinned) in the background; stdout+stderr go to $W/NAME.log.
# PID[NAME] is CMD's own pid (taskset execs it).
spawn() {
    local name=$1
    shift
    pin_next
    "${PIN[@]}" "$@" >"$W/$name.log" 2>&1 </dev/null &
    PID[$name]=$!
    [[ $1 == "$TCPCAN" ]] && BRIDGE[$name]=1
    return 0
}

# stop NAME [SIGNAL]: signals the process (default TERM) and waits up to 10 s; STATUS gets its
# exit status, or "hung" if it had to be killed.
stop() {
    local name=$1 sig=${2:-TERM} pid=${PID[$1]:-}
    [[ -n $pid ]] || { STATUS=none; return 0; }
    kill -s "$sig" "$pid" 2>/dev/null
    if ! poll 10 eval "! kill -0 $pid 2>/dev/null"; then
        kill -KILL "$pid" 2>/dev/null
        { wait "$pid"; } 2>/dev/null
        STATUS=hung
    else
        { wait "$pid"; } 2>/dev/null
        STATUS=$?
    fi
    unset "PID[$name]"
}

# stop_clean NAME: SIGTERM; it must exit 0 and print its final statistics line.
stop_clean() {
    stop "$1" TERM
    [[ $STATUS == 0 ]] || fail "$1 did not exit 0 after SIGTERM (status $STATUS)"
    grep -q ' stats: ' "$W/$1.log" || fail "$1 printed no final ' stats: ' line after SIGTERM"
}

# stat_of NAME KEY: KEY's value on the last statistics line of NAME's log (empty if absent).
stat_of() {
    grep ' stats: ' "$W/$1.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=\([0-9][0-9]*\).*/\1/p" | tail -n 1
}

expect_stat() {  # NAME KEY VALUE
    local v
    v=$(stat_of "$1" "$2")
    [[ $v == "$3" ]] || fail "$1: statistics say $2=${v:-<missing>}, expected $3"
}

# Receivers registered on interface IF in the kernel (candump, tcpcan, ... sockets and filters).
rx_count() {
    cat /proc/net/can/rcvlist_* 2>/dev/null | awk -v d="$1" '$1 == d && NF >= 7 {n++} END {print n + 0}'
}

# ready IF N: waits (at most 3 s, not fatal) until IF has at least N kernel receivers.
ready() {
    poll 3 eval "(( \$(rx_count $1) >= $2 ))" || say "note: only $(rx_count "$1") receivers on $1 (wanted $2)"
}

# capture NAME IF: candump -L of IF into $W/NAME.dump, started and bound before returning.
capture() {
    local name=$1 ifc=$2 before
    before=$(rx_count "$ifc")
    candump -L -d -r 8388608 "$ifc" >"$W/$name.dump" 2>"$W/$name.candump-err" </dev/null &
    PID[$name]=$!
    poll 5 eval "(( \$(rx_count $ifc) > $before ))" || fail "candump on $ifc did not start"
}

end_capture() {  # NAME: stops the candump and checks that it dropped nothing itself
    stop "$1" TERM
    if grep -q DROPCOUNT "$W/$1.dump"; then
        fail "test harness: candump $1 lost frames ($(grep DROPCOUNT "$W/$1.dump" | tail -n 1))"
    fi
}

# frames FILE: the ID#DATA fields of a candump -L capture (or of a vector file), one a line,
# with the CANFD_FDF bit (0x4) cleared in the FD flags nibble: newer kernels set it on every
# FD frame, and it is not part of what a sender chooses.
frames() {
    awk '
        /^\(/ { f = $3 }
        !/^\(/ && NF { f = $1 }
        NF == 0 || (!/^\(/ && /DROPCOUNT/) { next }
        {
            i = index(f, "##")
            if (i) {
                h = "0123456789ABCDEF"
                v = index(h, toupper(substr(f, i + 2, 1))) - 1
                if (int(v / 4) % 2) v -= 4
                f = substr(f, 1, i + 1) substr(h, v + 1, 1) substr(f, i + 3)
            }
            print f
        }' "$1"
}

count() { awk '/^\(/ || (NF && !/DROPCOUNT/) {n++} END {print n + 0}' "$1"; }

# wait_count FILE N [MAX]: until FILE holds at least N frames. Gives up (status 1) after MAX
# seconds (default 60), or earlier once the count has not grown for $STALL seconds (default 5),
# so a bridge that lost frames fails quickly rather than at the scenario's time limit.
STALL=${TCPCAN_STALL_SECONDS:-5}
wait_count() {
    local file=$1 n=$2 end=$((SECONDS + ${3:-60})) last=-1 now changed=$SECONDS
    while :; do
        now=$(count "$file")
        ((now >= n)) && return 0
        if ((now != last)); then
            last=$now
            changed=$SECONDS
        fi
        ((SECONDS - changed >= STALL || SECONDS >= end)) && return 1
        sleep 0.1
    done
}

# settle FILE [QUIET] [MAX]: waits until FILE has not grown for QUIET seconds (default 0.5),
# at most MAX seconds (default 30).
settle() {
    local file=$1 quiet=${2:-0.5} end=$((SECONDS + ${3:-30})) last now
    last=$(count "$file")
    while ((SECONDS < end)); do
        sleep "$quiet"
        now=$(count "$file")
        [[ $now == "$last" ]] && return 0
        last=$now
    done
}

# Frames the kernel dropped in its receive backlogs (net.core.netdev_max_backlog): a vcan
# frame dropped there never reaches any socket, so the capture and the bridge both miss it.
backlog_drops() {
    awk 'function hex(s,  i, v) { v = 0; s = toupper(s)
             for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1
             return v }
         { n += hex($2) } END { print n + 0 }' /proc/net/softnet_stat 2>/dev/null || echo "?"
}

# source_complete FILE N WHERE: the capture of what a generator put on the bus holds all N
# frames; otherwise the run cannot judge the bridge, and says why.
source_complete() {
    local got
    got=$(count "$1")
    [[ $got == "$2" ]] ||
        fail "test harness: the capture on $3 holds $got of the $2 frames sent (frames dropped by the kernel's receive backlogs since boot: $(backlog_drops); raise net.core.netdev_max_backlog)"
}

# same WHAT EXPECTED ACTUAL: frame lists equal byte for byte, in count and order.
same() {
    local what=$1 a=$W/.expected b=$W/.actual ne na line
    frames "$2" >"$a"
    frames "$3" >"$b"
    cmp -s "$a" "$b" && return 0
    ne=$(wc -l <"$a" | tr -d ' ')
    na=$(wc -l <"$b" | tr -d ' ')
    line=$(awk 'NR == FNR { e[FNR] = $0; n = FNR; next }
                $0 != e[FNR] { printf "frame %d: expected %s, got %s", FNR, (FNR <= n ? e[FNR] : "nothing"), $0; found = 1; exit }
                END { if (!found && FNR < n) printf "frame %d: expected %s, got nothing", FNR + 1, e[FNR + 1] }' "$a" "$b")
    say "$what: expected $ne frames, got $na; diff -u expected actual:"
    diff -u "$a" "$b" | sed -n '3,16p' | sed 's/^/  | /'
    fail "$what: frames differ (expected $ne, got $na; first difference at $line)"
}

# send IF VECTORFILE [GAP_MS]: sends the frames of a vector file (one ID#DATA a line) with
# canplayer, in order, as fast as possible (or GAP_MS apart).
send() {
    local ifc=$1 file=$2 gap=${3:-0}
    frames "$file" | awk -v d="$ifc" '{ printf "(0.000000) %s %s\n", d, $1 }' >"$W/.play"
    pinned canplayer -t -g "$gap" -I "$W/.play" || fail "canplayer could not send $file on $ifc"
}

# Vector files --------------------------------------------------------------------------
hexbytes() {  # N [START]: N bytes as hex, counting up from START (default 0)
    local n=$1 s=${2:-0} i b out=
    for ((i = 0; i < n; i++)); do
        printf -v b '%02X' $(((s + i) & 255))
        out+=$b
    done
    printf '%s' "$out"
}

# The reference set: every frame kind the bridge must carry exactly.
write_vectors() {
    {
        echo "000#"
        echo "123#DE"
        echo "7FF#0011223344556677"
        echo "456#R"
        echo "789#R3"
        echo "00000000#AA"
        echo "12345678#0102030405"
        echo "1FFFFFFF#FFFFFFFFFFFFFFFF"
        echo "1ABCDE00#R"
        echo "100##0"
        echo "101##011"
        echo "102##0$(hexbytes 8 16)"
        echo "103##1$(hexbytes 12 32)"
        echo "104##2$(hexbytes 16 48)"
        echo "105##3$(hexbytes 20 64)"
        echo "106##1$(hexbytes 32 96)"
        echo "107##2$(hexbytes 48 128)"
        echo "7FF##3$(hexbytes 64 0)"
        echo "1F334455##1$(hexbytes 64 192)"
        echo "00000001##3$(hexbytes 24 7)"
        echo "321#$(hexbytes 8 200)"
    } >"$1"
}

# Ports and processes ---------------------------------------------------------------------
listening() {  # PORT: some socket listens on TCP PORT (IPv4 or IPv6)
    local hex
    hex=$(printf ':%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p {f = 1} END {exit !f}'
}

LOGOPT=()
[[ -n ${TCPCAN_LOG_LEVEL:-} ]] && LOGOPT=(--log-level "$TCPCAN_LOG_LEVEL")

# server NAME IF PORT [OPTIONS...]: starts `tcpcan server` and waits until it listens.
SERVER=          # the server started last, and how many clients client() has started for it
SERVER_CLIENTS=0
server() {
    local name=$1 ifc=$2 port=$3
    shift 3
    spawn "$name" "$TCPCAN" server --can "$ifc" --bind 127.0.0.1 --port "$port" "${LOGOPT[@]}" "$@"
    wait_listening "$name" "$port"
    SERVER=$name
    SERVER_CLIENTS=0
}

wait_listening() {  # NAME PORT
    local end=$((SECONDS + 10))
    while ((SECONDS < end)); do
        listening "$2" && return 0
        alive "$1" || { wait "${PID[$1]}"; fail "$1 exited (status $?) instead of listening on port $2"; }
        sleep 0.1
    done
    fail "$1 does not listen on port $2 after 10 s"
}

agreed() { grep -cE 'version [0-9]+ agreed' "$W/$1.log" 2>/dev/null || true; }

# wait_agreed NAME [N] [VERSION]: until NAME's log holds N (default 1) 'version V agreed' lines.
wait_agreed() {
    local name=$1 n=${2:-1} v=${3:-} c end=$((SECONDS + 15))
    while ((SECONDS < end)); do
        c=$(agreed "$name")
        ((c >= n)) && break
        alive "$name" || { wait "${PID[$name]}"; fail "$name exited (status $?) before agreeing on a version"; }
        sleep 0.1
    done
    c=$(agreed "$name")
    ((c >= n)) || fail "$name logged no 'version N agreed' line within 15 s"
    if [[ -n $v ]]; then
        grep -E 'version [0-9]+ agreed' "$W/$name.log" | tail -n 1 | grep -q "version $v agreed" ||
            fail "$name: expected 'version $v agreed', log says: $(grep -E 'version [0-9]+ agreed' "$W/$name.log" | tail -n 1)"
    fi
}

# client NAME IF PORT [OPTIONS...]: starts `tcpcan client` and waits for version agreement
# in its log (then, briefly and not fatally, in the server's log too, for the other end of a
# version-2 handshake).
client() {
    local name=$1 ifc=$2 port=$3
    shift 3
    spawn "$name" "$TCPCAN" client --can "$ifc" --host 127.0.0.1 --port "$port" "${LOGOPT[@]}" "$@"
    wait_agreed "$name" 1
    server_agreed
}

server_agreed() {  # waits up to 3 s for one more agreement line in the current server's log
    [[ -n $SERVER ]] || return 0
    SERVER_CLIENTS=$((SERVER_CLIENTS + 1))
    poll 3 eval "(( \$(agreed $SERVER) >= $SERVER_CLIENTS ))" || true
}

# A probe frame that the scenario's vectors never use, to detect when bridging resumes.
PROBE_ID=5A5
# resumed FROM TO: sends probe frames on FROM until one shows up on TO (at most 20 s). Frames
# the bridge had queued while the interface was away arrive before the probe, so they cannot
# leak into a later capture.
resumed() {
    local from=$1 to=$2 i=0 end=$((SECONDS + 20)) last
    capture probe "$to"
    while ((SECONDS < end)); do
        i=$((i + 1))
        printf -v last '%s#%02X' "$PROBE_ID" $((i & 255))
        pinned cansend "$from" "$last"
        if grep -q " $PROBE_ID#" "$W/probe.dump"; then
            # Let the last probe arrive too, so none leaks into a later capture.
            poll 5 grep -q " $last\$" "$W/probe.dump" || true
            end_capture probe
            return 0
        fi
        sleep 0.5
    done
    end_capture probe
    fail "bridging $from -> $to did not resume within 20 s"
}

# exchange TAG IFa IFb: the reference vectors IFa -> IFb, then IFb -> IFa, checked on both
# buses (the sending side's capture shows what really went out and that nothing echoes back).
exchange() {
    local tag=$1 a=$2 b=$3 n
    [[ -f $W/vectors ]] || write_vectors "$W/vectors"
    n=$(count "$W/vectors")
    cat "$W/vectors" "$W/vectors" >"$W/vectors2"
    capture "$tag-a" "$a"
    capture "$tag-b" "$b"
    send "$a" "$W/vectors"
    wait_count "$W/$tag-b.dump" "$n" 10 || same "$tag: $a -> $b" "$W/vectors" "$W/$tag-b.dump"
    send "$b" "$W/vectors"
    wait_count "$W/$tag-a.dump" $((2 * n)) 10 || true
    settle "$W/$tag-a.dump"
    settle "$W/$tag-b.dump"
    end_capture "$tag-a"
    end_capture "$tag-b"
    same "$tag: on $a ($a -> $b, then $b -> $a)" "$W/vectors2" "$W/$tag-a.dump"
    same "$tag: on $b ($a -> $b, then $b -> $a)" "$W/vectors2" "$W/$tag-b.dump"
    say "$tag: $n frames $a -> $b and $n frames $b -> $a, exact"
}

# is_subsequence A B: the frames of B appear in A in the same order (B may miss some).
is_subsequence() {
    frames "$1" >"$W/.a"
    frames "$2" >"$W/.b"
    awk 'NR == FNR { a[++n] = $0; next } { while (i < n && a[++i] != $0) {} if (a[i] != $0) { print FNR; exit 1 } }' "$W/.a" "$W/.b"
}

# ======================================================================================
# Scenarios: sc_NAME, run with IF0 IF1 IF2 and PORT set
# ======================================================================================
sc_smoke() {
    local i
    for i in "$IF0" "$IF1" "$IF2"; do
        [[ -d /sys/class/net/$i ]] || fail "interface $i does not exist"
        [[ $(cat "/sys/class/net/$i/mtu") == 72 ]] || fail "$i has MTU $(cat "/sys/class/net/$i/mtu"), not 72 (CAN FD)"
    done
    write_vectors "$W/vectors"
    capture d "$IF0"
    send "$IF0" "$W/vectors"
    wait_count "$W/d.dump" "$(count "$W/vectors")" 10
    settle "$W/d.dump"
    end_capture d
    same "candump on $IF0" "$W/vectors" "$W/d.dump"
    pinned cangen "$IF0" -g 0 -p 100 -I i -L 8 -D i -n 1000 -x || fail "cangen failed"
    say "$(count "$W/vectors") frames through cansend/canplayer -> $IF0 -> candump, exact"
}

sc_frames() {
    server s "$IF0" "$PORT"
    client c "$IF1" "$PORT"
    ready "$IF0" 1
    ready "$IF1" 1
    exchange x "$IF0" "$IF1"
    local n
    n=$(count "$W/vectors")
    stop_clean c
    stop_clean s
    expect_stat s from_bus "$n"
    expect_stat s to_bus "$n"
    expect_stat c from_bus "$n"
    expect_stat c to_bus "$n"
    expect_stat s dropped 0
    expect_stat c dropped 0
    say "statistics agree: from_bus=$n to_bus=$n dropped=0 on both sides"
}

sc_legacy_cli() {
    spawn s "$TCPCAN" --serve --host 127.0.0.1 --port "$PORT" -v "$IF0"
    wait_listening s "$PORT"
    spawn c "$TCPCAN" --host 127.0.0.1 --port "$PORT" -v "$IF1"
    wait_agreed c 1
    poll 3 eval "(( \$(agreed s) >= 1 ))" || true
    ready "$IF0" 1
    ready "$IF1" 1
    exchange x "$IF0" "$IF1"
    stop_clean c
    stop_clean s
}

# sc_msg VAR: the next `< ... >` message from the socketcand connection on fd 3 (5 s at most).
sc_msg() {
    local text
    IFS= read -r -d '>' -t 5 -u 3 text || fail "socketcand: no complete message within 5 s (got '${text:-}')"
    printf -v "$1" '%s>' "${text#"${text%%<*}"}"
}

sc_socketcand() {
    spawn s "$TCPCAN" server --can "$IF0" --can "$IF1" --bind 127.0.0.1 --listen "socketcand@127.0.0.1:$PORT" \
        "${LOGOPT[@]}"
    wait_listening s "$PORT"
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "cannot connect to 127.0.0.1:$PORT"
    local m
    sc_msg m
    [[ $m == "< hi >" ]] || fail "socketcand: expected '< hi >', got '$m'"
    printf '< open %s >' "$IF1" >&3
    sc_msg m
    [[ $m == "< ok >" ]] || fail "socketcand: '< open $IF1 >' answered '$m'"
    printf '< rawmode >' >&3
    sc_msg m
    [[ $m == "< ok >" ]] || fail "socketcand: '< rawmode >' answered '$m'"
    capture d0 "$IF0"
    capture d1 "$IF1"
    # Client -> IF1: socketcand's form, python-can's unpadded extended id, SavvyCAN's tokens.
    printf '< send 123 2 11 22 >< send 1ABCDE0F 0  >< send 1234 1 a >< send 80000321 2 ffffff80 7f >' >&3
    printf '%s\n' 123#1122 1ABCDE0F# 00001234#0A 00000321#807F >"$W/to_if1"
    wait_count "$W/d1.dump" 4 10 || true
    # IF0 -> must not reach the client (other bus); IF1 -> the client.
    pinned cansend "$IF0" 7FF#0F || fail "cansend on $IF0 failed"
    pinned cansend "$IF1" 456#DEADBEEF || fail "cansend on $IF1 failed"
    pinned cansend "$IF1" 12345678# || fail "cansend on $IF1 failed"
    printf '%s\n' 123#1122 1ABCDE0F# 00001234#0A 00000321#807F 456#DEADBEEF 12345678# >"$W/on_if1"
    wait_count "$W/d1.dump" 6 10 || true
    sc_msg m
    [[ $m =~ ^'< frame 456 '[0-9]+\.[0-9]{6}' DEADBEEF >'$ ]] || fail "socketcand: expected IF1's 456#DEADBEEF, got '$m'"
    sc_msg m
    [[ $m =~ ^'< frame 12345678 '[0-9]+\.[0-9]{6}'  >'$ ]] || fail "socketcand: expected IF1's empty 12345678#, got '$m'"
    settle "$W/d1.dump"
    end_capture d0
    end_capture d1
    same "socketcand: on $IF1" "$W/on_if1" "$W/d1.dump"
    printf '%s\n' 7FF#0F >"$W/on_if0"
    same "socketcand: on $IF0 (nothing from the client)" "$W/on_if0" "$W/d0.dump"
    exec 3>&-
    stop_clean s
    expect_stat s to_bus 4
    say "4 client frames -> $IF1 exact, $IF1 -> client as < frame >, nothing across buses"
}

# burst_one TAG FROM TO CANGEN-OPTIONS...: 10,000 frames from cangen, exact at the far end.
burst_one() {
    local tag=$1 from=$2 to=$3 t0 t1
    shift 3
    capture "$tag-src" "$from"
    capture "$tag-dst" "$to"
    t0=$(date +%s)
    pinned cangen "$from" -g 0 -p 100 -n 10000 "$@" || fail "cangen $* failed"
    wait_count "$W/$tag-src.dump" 10000 30 || true
    wait_count "$W/$tag-dst.dump" 10000 90 || true
    t1=$(date +%s)
    settle "$W/$tag-dst.dump"
    end_capture "$tag-src"
    end_capture "$tag-dst"
    source_complete "$W/$tag-src.dump" 10000 "$from"
    same "$tag: $from -> $to" "$W/$tag-src.dump" "$W/$tag-dst.dump"
    say "$tag: 10000 frames $from -> $to (cangen $*), none lost, order kept, $((t1 - t0)) s"
}

sc_burst() {
    server s "$IF0" "$PORT"
    client c "$IF1" "$PORT"
    ready "$IF0" 1
    ready "$IF1" 1
    burst_one classic "$IF0" "$IF1" -I i -L 8 -D i
    burst_one fd "$IF1" "$IF0" -f -b -I i -L 64 -D i
    stop_clean c
    stop_clean s
    expect_stat s dropped 0
    expect_stat c dropped 0
    expect_stat s from_bus 10000
    expect_stat c to_bus 10000
}

sc_proto_v1() {
    local side
    for side in server client; do
        local s_opt=() c_opt=()
        if [[ $side == server ]]; then s_opt=(--protocol-version 1); else c_opt=(--protocol-version 1); fi
        server "s-$side" "$IF0" "$PORT" "${s_opt[@]}"
        spawn "c-$side" "$TCPCAN" client --can "$IF1" --host 127.0.0.1 --port "$PORT" "${LOGOPT[@]}" "${c_opt[@]}"
        wait_agreed "c-$side" 1 1
        server_agreed
        ready "$IF0" 1
        ready "$IF1" 1
        exchange "v1-$side" "$IF0" "$IF1"
        capture "b-$side" "$IF1"
        pinned cangen "$IF0" -g 0 -p 100 -n 1000 -e -I i -L 8 -D i || fail "cangen failed"
        wait_count "$W/b-$side.dump" 1000 30 || true
        settle "$W/b-$side.dump"
        end_capture "b-$side"
        [[ $(count "$W/b-$side.dump") == 1000 ]] || fail "v1 ($side side): $(count "$W/b-$side.dump") of 1000 burst frames arrived"
        stop_clean "c-$side"
        stop_clean "s-$side"
        say "--protocol-version 1 on the $side: version 1 agreed, vectors both ways and 1000 frames exact"
        PORT=$((PORT + 1))
    done
}

# filter_case TAG FROM TO SENDFILE EXPECTFILE: sends SENDFILE on FROM, exactly EXPECTFILE on TO.
# Every send list ends with a frame that passes, so once it has arrived nothing else can.
filter_case() {
    local tag=$1 from=$2 to=$3 sendf=$4 expf=$5
    capture "$tag-src" "$from"
    capture "$tag" "$to"
    send "$from" "$sendf"
    wait_count "$W/$tag.dump" "$(count "$expf")" 10 || true
    sleep 0.3
    settle "$W/$tag.dump"
    end_capture "$tag"
    end_capture "$tag-src"
    same "$tag: what was sent on $from" "$sendf" "$W/$tag-src.dump"
    # On the receiving side, frames come only from the bridge (nothing else sends on $to).
    same "$tag: $from -> $to" "$expf" "$W/$tag.dump"
    say "$tag: $(count "$sendf") sent, exactly the $(count "$expf") matching crossed"
}

sc_filters() {
    # Round 1: server forwards 100-1FF (standard) and 1AB extended; client 123:7FF (candump
    # form) and 12345678:1FFFFFFF (extended, 8 digits).
    server s1 "$IF0" "$PORT" --filter 100-1FF --filter 1ABx
    client c1 "$IF1" "$PORT" --filter 123:7FF --filter 12345678:1FFFFFFF
    ready "$IF0" 1
    ready "$IF1" 1
    printf '%s\n' 0FF#01 100#02 150#03 000001AB#04 1AB#05 200#06 00000150#07 7FF#08 1FF#09 \
        000001AC#0A 180##1AABB 000001AB#R 1FF#0B >"$W/f1.send"
    printf '%s\n' 100#02 150#03 000001AB#04 1AB#05 1FF#09 180##1AABB 000001AB#R 1FF#0B >"$W/f1.expect"
    filter_case f1-server "$IF0" "$IF1" "$W/f1.send" "$W/f1.expect"
    printf '%s\n' 122#01 123#02 124#03 723#04 12345679#05 12345678#06 023#07 123#R 12345678#R 123#08 >"$W/f2.send"
    printf '%s\n' 123#02 12345678#06 123#R 12345678#R 123#08 >"$W/f2.expect"
    filter_case f2-client "$IF1" "$IF0" "$W/f2.send" "$W/f2.expect"
    stop_clean c1
    stop_clean s1
    # Round 2: server 123~7FF (everything but 123); client 100/700 (canip_peer's id/mask).
    PORT=$((PORT + 1))
    server s2 "$IF0" "$PORT" --filter '123~7FF'
    client c2 "$IF1" "$PORT" --filter 100/700
    ready "$IF0" 1
    ready "$IF1" 1
    printf '%s\n' 122#01 123#02 124#03 123#04 7FF#05 >"$W/f3.send"
    printf '%s\n' 122#01 124#03 7FF#05 >"$W/f3.expect"
    filter_case f3-server "$IF0" "$IF1" "$W/f3.send" "$W/f3.expect"
    printf '%s\n' 0FF#01 100#02 200#03 1FF#04 700#05 180#06 >"$W/f4.send"
    printf '%s\n' 100#02 1FF#04 180#06 >"$W/f4.expect"
    filter_case f4-client "$IF1" "$IF0" "$W/f4.send" "$W/f4.expect"
    stop_clean c2
    stop_clean s2
}
# Note on f1: 1AB (standard) does not match 1ABx, but it is inside 100-1FF, so it crosses.

sc_timestamps() {
    local fifo=$W/stdin n
    server s "$IF0" "$PORT" --timestamps
    mkfifo "$fifo"
    exec 7<>"$fifo"   # keeps the stdio client's stdin open and empty
    pin_next
    "${PIN[@]}" "$TCPCAN" client --can - --host 127.0.0.1 --port "$PORT" --timestamps "${LOGOPT[@]}" \
        <&7 >"$W/c.out" 2>"$W/c.log" &
    PID[c]=$!
    BRIDGE[c]=1
    wait_agreed c 1
    server_agreed
    ready "$IF0" 1
    write_vectors "$W/vectors"
    n=$(count "$W/vectors")
    capture src "$IF0"
    send "$IF0" "$W/vectors" 7
    wait_count "$W/c.out" "$n" 15 || true
    settle "$W/c.out"
    end_capture src
    same "stdio client output" "$W/src.dump" "$W/c.out"
    awk '/^\(/ {print $1, $NF}' "$W/src.dump" >"$W/ts.expected"
    awk '/^\(/ {print $1, $NF}' "$W/c.out" >"$W/ts.actual"
    if ! cmp -s "$W/ts.expected" "$W/ts.actual"; then
        say "timestamps at the source (candump on $IF0) vs printed by the stdio client:"
        paste -d' ' "$W/ts.expected" "$W/ts.actual" | head -n 8 | sed 's/^/  | /'
        fail "the carried timestamps differ from the kernel receive timestamps on $IF0"
    fi
    stop_clean c
    exec 7>&-
    stop_clean s
    say "$n frames: every timestamp printed by the stdio client equals candump's on $IF0 to the microsecond"
}

sc_two_clients() {
    server s "$IF0" "$PORT"
    client a "$IF1" "$PORT"
    client b "$IF2" "$PORT"
    ready "$IF0" 1
    ready "$IF1" 1
    ready "$IF2" 1
    write_vectors "$W/vectors"
    capture src "$IF0"
    capture d1 "$IF1"
    capture d2 "$IF2"
    send "$IF0" "$W/vectors"
    pinned cangen "$IF0" -g 0 -p 100 -n 2000 -I i -L 8 -D i || fail "cangen failed"
    local n
    n=$(($(count "$W/vectors") + 2000))
    wait_count "$W/d1.dump" "$n" 30 || true
    wait_count "$W/d2.dump" "$n" 30 || true
    settle "$W/d1.dump"
    settle "$W/d2.dump"
    end_capture src
    end_capture d1
    end_capture d2
    source_complete "$W/src.dump" "$n" "$IF0"
    same "client a ($IF1)" "$W/src.dump" "$W/d1.dump"
    same "client b ($IF2)" "$W/src.dump" "$W/d2.dump"
    say "$n frames from $IF0 reached both $IF1 and $IF2 exactly"
    # Each client's frames reach the server's bus.
    printf '%s\n' 111#A1 1111111A#A2 112##1A3 >"$W/from-a"
    printf '%s\n' 221#B1 1BBBBBBB#B2 222##2B3 >"$W/from-b"
    capture back "$IF0"
    send "$IF1" "$W/from-a"
    wait_count "$W/back.dump" 3 10 || true
    send "$IF2" "$W/from-b"
    wait_count "$W/back.dump" 6 10 || true
    settle "$W/back.dump"
    end_capture back
    cat "$W/from-a" "$W/from-b" >"$W/back.expect"
    same "$IF1 then $IF2 -> $IF0" "$W/back.expect" "$W/back.dump"
    stop_clean a
    stop_clean b
    stop_clean s
}

sc_slow_rx() {
    local total=5000 delivered sd cd fb tb
    command -v tc >/dev/null || fail "tc (iproute2) is needed to slow $IF1 down"
    ip link set dev "$IF1" txqueuelen 1 2>/dev/null || say "note: cannot set txqueuelen on $IF1"
    # vcan transmits synchronously; a token bucket makes IF1 accept ~1250 frames/s (16-byte
    # skbs at 160 kbit/s) and refuse the rest with ENOBUFS once 10 frames are queued.
    tc qdisc replace dev "$IF1" root tbf rate 160kbit burst 1600 limit 160 ||
        fail "cannot install a tbf qdisc on $IF1"
    server s "$IF0" "$PORT"
    client c "$IF1" "$PORT"
    ready "$IF0" 1
    ready "$IF1" 1
    capture src "$IF0"
    capture dst "$IF1"
    pinned cangen "$IF0" -g 0 -p 100 -n "$total" -I i -L 8 -D i || fail "cangen failed"
    wait_count "$W/src.dump" "$total" 30 || true
    # Until the far end has seen everything that is going to arrive: no new frame for 3 s.
    settle "$W/dst.dump" 3 40
    alive c || fail "the client died under the flood"
    alive s || fail "the server died under the flood"
    end_capture src
    end_capture dst
    say "qdisc on $IF1: $(tc -s qdisc show dev "$IF1" | tr -s ' \n' ' ' | cut -c1-160)"
    stop_clean c
    stop_clean s
    source_complete "$W/src.dump" "$total" "$IF0"
    delivered=$(count "$W/dst.dump")
    sd=$(stat_of s dropped)
    cd=$(stat_of c dropped)
    fb=$(stat_of s from_bus)
    tb=$(stat_of c to_bus)
    say "sent $total, delivered $delivered, dropped: server ${sd:-?} client ${cd:-?}; server from_bus=${fb:-?}, client to_bus=${tb:-?}"
    [[ -n $sd && -n $cd ]] || fail "the statistics lines lack dropped="
    [[ $fb == "$total" ]] || fail "server from_bus=$fb, but $total frames were on $IF0"
    [[ $tb == "$delivered" ]] || fail "client to_bus=$tb, but $delivered frames arrived on $IF1"
    ((delivered + sd + cd == total)) ||
        fail "delivered $delivered + dropped $sd + $cd != sent $total: $((total - delivered - sd - cd)) frames unaccounted for"
    local bad
    bad=$(is_subsequence "$W/src.dump" "$W/dst.dump") ||
        fail "delivered frames out of order or duplicated (frame $bad of the far end)"
    ((delivered < total)) || say "note: nothing was dropped (the bridge queued everything)"
}

# Every frame the kernel could not queue for the server's socket must be counted: it reports
# them with each later frame (SO_RXQ_OVFL), which the server reads through a receive header
# whose control length it must reset each time (a header last used without that report was
# shortened to the timestamp alone, and would cut the report off).
sc_rx_overflow() {
    local flood=60000 tx0 tx1 bl0 bl1 on_bus fb ov
    server s "$IF0" "$PORT"
    client c "$IF1" "$PORT"
    ready "$IF0" 1
    tx0=$(cat "/sys/class/net/$IF0/statistics/tx_packets")
    bl0=$(backlog_drops)
    # Some frames first, so the receive headers have been used without an overflow report.
    pinned cangen "$IF0" -g 1 -n 100 -I 100 -L 8 -D i || fail "cangen failed"
    sleep 1
    kill -STOP "${PID[s]}"
    pinned cangen "$IF0" -g 0 -p 100 -n "$flood" -I 200 -L 8 -D i || fail "cangen failed"
    kill -CONT "${PID[s]}"
    # Frames after the overflow carry the kernel's count of what it dropped.
    pinned cangen "$IF0" -g 1 -n 20 -I 300 -L 8 -D i || fail "cangen failed"
    sleep 2
    alive s || fail "the server died after the overflow"
    tx1=$(cat "/sys/class/net/$IF0/statistics/tx_packets")
    bl1=$(backlog_drops)
    stop_clean c
    stop_clean s
    on_bus=$((tx1 - tx0 - (bl1 - bl0)))
    fb=$(stat_of s from_bus)
    ov=$(stat_of s bus_rx_overflow)
    say "frames on $IF0: $on_bus (backlog drops $((bl1 - bl0))); server from_bus=${fb:-?} bus_rx_overflow=${ov:-?}"
    [[ -n $fb && -n $ov ]] || fail "the server's statistics line lacks from_bus= or bus_rx_overflow="
    ((fb + ov == on_bus)) ||
        fail "from_bus $fb + bus_rx_overflow $ov != $on_bus frames on $IF0: $((on_bus - fb - ov)) uncounted"
    ((ov > 0)) || fail "no overflow happened ($flood frames fit the stopped server's receive queue): the scenario proves nothing"
    grep -q "the kernel dropped [0-9]* frames" "$W/s.log" || fail "the server did not log the kernel's drops"
}

# log_since NAME OFFSET: NAME's log after byte OFFSET.
log_since() { tail -c +$(($2 + 1)) "$W/$1.log"; }
log_size() { stat_size "$W/$1.log"; }
stat_size() { wc -c <"$1" | tr -d ' '; }

# down_up NAME IF OTHER: takes IF down (and sends into it from OTHER), expects NAME to log
# it, brings it up, and expects bridging to resume both ways.
down_up() {
    local name=$1 ifc=$2 other=$3 off
    off=$(log_size "$name")
    ip link set dev "$ifc" down || fail "cannot take $ifc down"
    pinned cansend "$other" 3A1#01
    pinned cansend "$other" 3A1#02
    poll 10 eval "log_since $name $off | grep -i -- '$ifc' | grep -qiE 'down|ENETDOWN'" ||
        { ip link set dev "$ifc" up; fail "$name did not log that $ifc went down"; }
    say "$name logged: $(log_since "$name" "$off" | grep -i -- "$ifc" | grep -iE 'down|ENETDOWN' | head -n 1 | cut -c1-150)"
    sleep 1
    ip link set dev "$ifc" up || fail "cannot bring $ifc up"
    resumed "$other" "$ifc"
    resumed "$ifc" "$other"
}

sc_if_down_up() {
    server s "$IF0" "$PORT"
    client c "$IF1" "$PORT"
    ready "$IF0" 1
    ready "$IF1" 1
    exchange before "$IF0" "$IF1"
    down_up c "$IF1" "$IF0"
    exchange after-client-side "$IF0" "$IF1"
    down_up s "$IF0" "$IF1"
    exchange after-server-side "$IF0" "$IF1"
    alive c || fail "the client exited"
    alive s || fail "the server exited"
    stop_clean c
    stop_clean s
}

sc_if_recreate() {
    local off
    server s "$IF0" "$PORT"
    client c "$IF1" "$PORT"
    ready "$IF0" 1
    ready "$IF1" 1
    exchange before "$IF0" "$IF1"
    off=$(log_size c)
    ip link del dev "$IF1" || fail "cannot delete $IF1"
    pinned cansend "$IF0" 3A1#01
    poll 10 eval "log_since c $off | grep -q -- '$IF1'" ||
        { ip link add dev "$IF1" type vcan; ip link set dev "$IF1" up; fail "the client did not log that $IF1 disappeared"; }
    say "client logged: $(log_since c "$off" | grep -- "$IF1" | head -n 1 | cut -c1-150)"
    sleep 1
    ip link add dev "$IF1" type vcan && ip link set dev "$IF1" mtu 72 && ip link set dev "$IF1" up ||
        fail "cannot create $IF1 again"
    resumed "$IF0" "$IF1"
    resumed "$IF1" "$IF0"
    exchange after "$IF0" "$IF1"
    stop_clean c
    stop_clean s
}

sc_restart_client() {
    server s "$IF0" "$PORT"
    client c1 "$IF1" "$PORT"
    ready "$IF0" 1
    ready "$IF1" 1
    exchange first "$IF0" "$IF1"
    stop c1 KILL
    say "client killed (SIGKILL)"
    client c2 "$IF1" "$PORT"
    ready "$IF1" 1
    exchange second "$IF0" "$IF1"
    alive s || fail "the server exited after its client was killed"
    stop_clean c2
    stop_clean s
}

sc_restart_server() {
    local before
    server s1 "$IF0" "$PORT"
    client c "$IF1" "$PORT"
    ready "$IF0" 1
    ready "$IF1" 1
    exchange first "$IF0" "$IF1"
    before=$(agreed c)
    stop s1 KILL
    say "server killed (SIGKILL)"
    sleep 0.5
    alive c || { wait "${PID[c]}"; fail "the client exited (status $?) when the server was killed"; }
    server s2 "$IF0" "$PORT"
    wait_agreed c $((before + 1))
    server_agreed
    say "client reconnected to the new server"
    ready "$IF0" 1
    exchange second "$IF0" "$IF1"
    stop_clean c
    stop_clean s2
}

# Two network namespaces ------------------------------------------------------------------
# two_namespaces: NS_A and NS_B (named after the scenario's port, deleted at its end), joined
# by a veth pair (veth-a 10.77.0.1/24 in NS_A, veth-b 10.77.0.2/24 in NS_B), each with a vcan
# of its own (CAN_A, CAN_B; MTU 72), the server on NS_A's address and the client in NS_B.
NETNS=()
IP_BIN=$(command -v ip)  # a full path: busybox's taskset would run its own 'ip' applet (no netns)
CAN_A=vcan-a CAN_B=vcan-b ADDR_A=10.77.0.1
two_namespaces() {
    NS_A=tcpcan-a-$PORT NS_B=tcpcan-b-$PORT
    local ns
    for ns in "$NS_A" "$NS_B"; do
        ip netns add "$ns" || fail "test harness: cannot create network namespace $ns ('ip netns')"
        NETNS+=("$ns")
        ip -n "$ns" link set dev lo up || fail "cannot raise lo in $ns"
    done
    ip link add veth-a netns "$NS_A" type veth peer name veth-b netns "$NS_B" ||
        fail "test harness: cannot create a veth pair (module veth)"
    ip -n "$NS_A" addr add "$ADDR_A/24" dev veth-a && ip -n "$NS_B" addr add 10.77.0.2/24 dev veth-b &&
        ip -n "$NS_A" link set dev veth-a up && ip -n "$NS_B" link set dev veth-b up || fail "cannot set up the veth pair"
    ip -n "$NS_A" link add dev "$CAN_A" type vcan && ip -n "$NS_A" link set dev "$CAN_A" mtu 72 &&
        ip -n "$NS_A" link set dev "$CAN_A" up || fail "cannot create $CAN_A in $NS_A"
    ip -n "$NS_B" link add dev "$CAN_B" type vcan && ip -n "$NS_B" link set dev "$CAN_B" mtu 72 &&
        ip -n "$NS_B" link set dev "$CAN_B" up || fail "cannot create $CAN_B in $NS_B"
}

# ns_rx_count NS IF: kernel receivers on IF in namespace NS, read through /proc/PID/net of the
# bridge running there (no process started: 'ip netns exec' is slow under emulation).
declare -A NS_PID=()
ns_rx_count() {
    cat /proc/"${NS_PID[$1]}"/net/can/rcvlist_* 2>/dev/null | awk -v d="$2" '$1 == d && NF >= 7 {n++} END {print n + 0}'
}

# ns_capture NAME NS IF ID: candump -L of frames with ID (11 bits) on IF in NS into $W/NAME.dump
# (after ns_bridges).
ns_capture() {
    local name=$1 ns=$2 ifc=$3 id=$4 before
    before=$(ns_rx_count "$ns" "$ifc")
    ip netns exec "$ns" candump -L -d -r 8388608 "$ifc,$id:7FF" >"$W/$name.dump" 2>"$W/$name.candump-err" </dev/null &
    PID[$name]=$!
    poll 5 eval "(( \$(ns_rx_count $ns $ifc) > $before ))" || fail "candump on $ifc in $ns did not start"
}

# ns_bridges [OPTIONS...]: the server in NS_A on CAN_A, the client in NS_B on CAN_B, agreed.
ns_bridges() {
    spawn s "$IP_BIN" netns exec "$NS_A" "$TCPCAN" server --can "$CAN_A" --bind "$ADDR_A" --port "$PORT" "${LOGOPT[@]}" "$@"
    BRIDGE[s]=1
    NS_PID[$NS_A]=${PID[s]}
    poll 10 grep -q 'listening on' "$W/s.log" || fail "the server in $NS_A does not listen after 10 s"
    spawn c "$IP_BIN" netns exec "$NS_B" "$TCPCAN" client --can "$CAN_B" --host "$ADDR_A" --port "$PORT" "${LOGOPT[@]}" "$@"
    BRIDGE[c]=1
    NS_PID[$NS_B]=${PID[c]}
    wait_agreed c 1
    poll 5 eval "(( \$(agreed s) >= 1 ))" || fail "the server logged no agreement"
    poll 3 eval "(( \$(ns_rx_count $NS_A $CAN_A) >= 1 && \$(ns_rx_count $NS_B $CAN_B) >= 1 ))" || true
}

# ns_flap_traffic TAG WHAT CMD...: cangen both ways (ID 123 from CAN_A, ID 456 from CAN_B, 8
# bytes of an incrementing counter, one frame every 4 ms at most); CMD (the flap) runs after
# 2 s of traffic and the traffic goes on for 2 s after it, so it spans the flap however fast
# the machine is. Then the far vcan must hold exactly what the near one carried (the near
# capture is the reference), once and in order. The rate keeps a flap of a few seconds well
# inside a replay buffer of 2,048 frames.
ns_flap_traffic() {
    local tag=$1 what=$2 na nb f
    shift 2
    ns_capture "$tag-src-a" "$NS_A" "$CAN_A" 123
    ns_capture "$tag-dst-b" "$NS_B" "$CAN_B" 123
    ns_capture "$tag-src-b" "$NS_B" "$CAN_B" 456
    ns_capture "$tag-dst-a" "$NS_A" "$CAN_A" 456
    spawn "$tag-gen-a" "$IP_BIN" netns exec "$NS_A" cangen "$CAN_A" -g 4 -I 123 -L 8 -D i
    spawn "$tag-gen-b" "$IP_BIN" netns exec "$NS_B" cangen "$CAN_B" -g 4 -I 456 -L 8 -D i
    sleep 2
    "$@"
    sleep 2
    stop "$tag-gen-a"
    stop "$tag-gen-b"
    settle "$W/$tag-src-a.dump" 0.5 10
    settle "$W/$tag-src-b.dump" 0.5 10
    na=$(count "$W/$tag-src-a.dump")
    nb=$(count "$W/$tag-src-b.dump")
    ((na >= 100 && nb >= 100)) || fail "test harness: cangen put only $na and $nb frames on the buses"
    wait_count "$W/$tag-dst-b.dump" "$na" 60 || true
    wait_count "$W/$tag-dst-a.dump" "$nb" 60 || true
    settle "$W/$tag-dst-a.dump" 1
    settle "$W/$tag-dst-b.dump" 1
    for f in src-a dst-b src-b dst-a; do end_capture "$tag-$f"; done
    same "$what: $CAN_A -> $CAN_B" "$W/$tag-src-a.dump" "$W/$tag-dst-b.dump"
    same "$what: $CAN_B -> $CAN_A" "$W/$tag-src-b.dump" "$W/$tag-dst-a.dump"
    say "$what: $na frames $CAN_A -> $CAN_B and $nb frames $CAN_B -> $CAN_A, exact on the far vcan; dead-peer lines so far: client $(grep -c 'dead peer' "$W/c.log"), server $(grep -c 'dead peer' "$W/s.log")"
}

veth_down_2s() {
    ip -n "$NS_B" link set dev veth-b down || fail "cannot take veth-b down"
    say "veth-b down"
    sleep 2
    ip -n "$NS_B" link set dev veth-b up || fail "cannot bring veth-b up"
    say "veth-b up again"
}

client_stopped_3s() {
    kill -STOP "${PID[c]}" || fail "cannot stop the client"
    say "client stopped (SIGSTOP)"
    sleep 3
    kill -CONT "${PID[c]}" || fail "cannot continue the client"
    say "client continued (SIGCONT)"
}

sc_veth_flaps() {
    two_namespaces
    ns_bridges --heartbeat 0.5   # dead after 1.5 s: each flap below ends the connection
    ns_flap_traffic down "veth down 2 s" veth_down_2s
    ns_flap_traffic stop "client stopped 3 s" client_stopped_3s
    stop_clean c
    stop_clean s
    local side
    for side in s c; do
        expect_stat "$side" lost 0
        expect_stat "$side" dropped 0
        expect_stat "$side" undeliverable 0
    done
    say "statistics: lost=0 dropped=0 undeliverable=0 on both sides; client resumed=$(stat_of c resumed) replayed=$(stat_of c replayed) undeliverable=$(stat_of c undeliverable), server resumed=$(stat_of s resumed) replayed=$(stat_of s replayed) undeliverable=$(stat_of s undeliverable)"
}

# expect_exit NAME STATUS PATTERN WHAT CMD...: CMD exits with STATUS within 15 s and its output
# matches the extended regex PATTERN (case-insensitive).
expect_exit() {
    local name=$1 want=$2 pattern=$3 what=$4 rc
    shift 4
    timeout -k 2 15 "$@" >"$W/$name.log" 2>&1 </dev/null
    rc=$?
    ((rc == 124 || rc == 137)) && fail "$what: still running after 15 s"
    [[ $want == nonzero && $rc != 0 ]] || [[ $rc == "$want" ]] ||
        fail "$what: exit status $rc, expected $want"
    grep -qiE -- "$pattern" "$W/$name.log" ||
        fail "$what: the message does not match /$pattern/: $(head -c 300 "$W/$name.log" | tr '\n' ' ')"
    say "$what: status $rc, \"$(grep -iE -- "$pattern" "$W/$name.log" | head -n 1 | cut -c1-140)\""
}

sc_bitrate() {
    local re="bit ?rate.*(can ?not|can't|cannot|unable|not (be )?(set|supported|possible|permitted|allowed)|no bit ?rate|vcan)|(can ?not|can't|cannot|unable to) set.*bit ?rate"
    expect_exit br-client 1 "$re" "client --can-bitrate 500000 on $IF1" \
        "$TCPCAN" client --can "$IF1" --host 127.0.0.1 --port "$PORT" --can-bitrate 500000
    expect_exit br-server 1 "$re" "server --can-bitrate 250000 on $IF0" \
        "$TCPCAN" server --can "$IF0" --bind 127.0.0.1 --port "$PORT" --can-bitrate 250000
    local i
    for i in "$IF0" "$IF1"; do
        ip link show dev "$i" | grep -q '[<,]UP[,>]' || fail "$i is no longer up after the refused --can-bitrate"
    done
}

sc_errors() {
    expect_exit missing-if 1 "nosuchcan9" "server on a missing interface" \
        "$TCPCAN" server --can nosuchcan9 --bind 127.0.0.1 --port "$PORT"
    grep -q 'ip link' "$W/missing-if.log" || fail "the missing-interface message does not suggest 'ip link show'"
    listening $((PORT + 1)) && fail "port $((PORT + 1)) is unexpectedly in use"
    expect_exit no-retry nonzero "." "client --no-retry with no server" \
        "$TCPCAN" client --can "$IF1" --host 127.0.0.1 --port $((PORT + 1)) --no-retry
}

# A key as 64 hex digits from the kernel's random source (the VM has no openssl).
random_key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

sc_tls_psk() {
    local key n
    key=$(random_key)
    [[ ${#key} == 64 ]] || fail "could not make a key (od gave '${key}')"
    (umask 077
        printf '# server: who may connect\nbench:%s\n' "$key" >"$W/server.psk"
        printf 'bench:%s\n' "$key" >"$W/client.psk"
        printf 'bench:%s\n' "$(random_key)" >"$W/wrong.psk")
    server s "$IF0" "$PORT" --tls-psk-file "$W/server.psk" --stats 1
    client c "$IF1" "$PORT" --tls-psk-file "$W/client.psk"
    grep -q "authenticated as 'bench'" "$W/c.log" || fail "the client logged no authenticated identity"
    poll 3 grep -q '\[bench\]: version 2 agreed' "$W/s.log" || fail "the server does not name the peer by its identity"
    ready "$IF0" 1
    ready "$IF1" 1
    exchange x "$IF0" "$IF1"
    expect_exit wrong 1 "refused" "a client with the wrong key (--no-retry)" \
        "$TCPCAN" client --can "$IF2" --host 127.0.0.1 --port "$PORT" --tls-psk-file "$W/wrong.psk" --no-retry
    poll 5 grep -q "refused: wrong pre-shared key for identity 'bench'" "$W/s.log" ||
        fail "the server did not name the wrong key"
    alive c || fail "the good client ended when another was refused"
    exchange y "$IF0" "$IF1"
    n=$(count "$W/vectors")
    stop_clean c
    stop_clean s
    expect_stat s from_bus $((2 * n))
    expect_stat s to_bus $((2 * n))
    expect_stat s dropped 0
    expect_stat s tls_refused 1
    say "two exchanges over TLS, exact; the wrong key refused by name"
}

# One server speaks cannelloni over TCP and over UDP; two of our clients speak it back.
sc_cannelloni() {
    local udp=$((PORT + 1)) local_port=$((PORT + 2)) n
    spawn s "$TCPCAN" server --can "$IF0" --listen "cannelloni@127.0.0.1:$PORT" --listen "cannelloni-udp@127.0.0.1:$udp" \
        --cannelloni-peer "127.0.0.1:$local_port" "${LOGOPT[@]}"
    wait_listening s "$PORT"
    spawn c "$TCPCAN" client --can "$IF1" --dialect cannelloni --host 127.0.0.1 --port "$PORT" "${LOGOPT[@]}"
    poll 15 grep -q 'cannelloni handshake done' "$W/c.log" || fail "the TCP client logged no cannelloni handshake"
    poll 3 grep -q 'cannelloni handshake done' "$W/s.log" || fail "the server logged no cannelloni handshake"
    ready "$IF0" 1
    ready "$IF1" 1
    exchange tcp "$IF0" "$IF1"
    # Empty frames are 5 bytes on cannelloni's wire: many in each read of the server.
    burst_one tcpb "$IF1" "$IF0" -I i -L 0
    stop_clean c
    spawn u "$TCPCAN" client --can "$IF2" --dialect cannelloni-udp --host 127.0.0.1 --port "$udp" \
        --cannelloni-local-port "$local_port" "${LOGOPT[@]}"
    poll 15 grep -q 'over UDP from' "$W/u.log" || fail "the UDP client did not start"
    ready "$IF2" 1
    exchange udp "$IF0" "$IF2"
    n=$(count "$W/vectors")
    stop_clean u
    stop_clean s
    expect_stat s from_bus $((2 * n))
    expect_stat s to_bus $((2 * n + 10000))
    expect_stat s dropped 0
    expect_stat s lost 0
    expect_stat u from_bus "$n"
    expect_stat u to_bus "$n"
    say "cannelloni over TCP and UDP: $n frames each way on each, exact, nothing dropped or lost"
}

# ids_in FILE: "ID COUNT" lines, the identifiers of a capture and how many frames each.
ids_in() { frames "$1" | awk -F'#' '{n[$1]++} END {for (i in n) print i, n[i]}' | sort; }
# only_ids FILE ID...: the frames of FILE whose identifier is one of ID.
only_ids() {
    local file=$1
    shift
    frames "$file" | awk -F'#' -v ids=" $* " 'index(ids, " " $1 " ")'
}

sc_two_buses() {
    local n=2000 x=tcx$((PORT % 100000)) f
    # A fourth interface, for the second client's bus.
    ip link add dev "$x" type vcan 2>/dev/null && ip link set "$x" mtu 72 up 2>/dev/null ||
        fail "test harness: cannot create a fourth vcan interface ($x) for the second client"
    spawn s "$TCPCAN" server --can "$IF0" --can "$IF1" --bind 127.0.0.1 --listen "tcpcan@$PORT" "${LOGOPT[@]}"
    wait_listening s "$PORT"
    SERVER=s
    SERVER_CLIENTS=0
    grep -q "buses '$IF0', '$IF1' by name" "$W/s.log" || fail "the server's log does not say it serves $IF0 and $IF1 by name"
    client a "$IF2" "$PORT" --remote-bus "$IF0"
    client b "$x" "$PORT" --remote-bus "$IF1"
    poll 5 grep -q "on bus '$IF0'" "$W/a.log" || fail "client a did not join $IF0"
    poll 5 grep -q "on bus '$IF1'" "$W/b.log" || fail "client b did not join $IF1"
    ready "$IF0" 1
    ready "$IF1" 1
    ready "$IF2" 1
    ready "$x" 1
    capture c0 "$IF0"
    capture c1 "$IF1"
    capture c2 "$IF2"
    capture c3 "$x"
    # One identifier per source bus, so a frame that crossed is seen at once.
    pinned cangen "$IF0" -g 0 -p 100 -n "$n" -I 100 -L 8 -D i || fail "cangen on $IF0 failed"
    pinned cangen "$IF1" -g 0 -p 100 -n "$n" -I 200 -L 8 -D i || fail "cangen on $IF1 failed"
    pinned cangen "$IF2" -g 0 -p 100 -n "$n" -I 300 -L 8 -D i || fail "cangen on $IF2 failed"
    pinned cangen "$x" -g 0 -p 100 -n "$n" -I 400 -L 8 -D i || fail "cangen on $x failed"
    wait_count "$W/c0.dump" $((2 * n)) 60 || true
    wait_count "$W/c1.dump" $((2 * n)) 60 || true
    wait_count "$W/c2.dump" $((2 * n)) 60 || true
    wait_count "$W/c3.dump" $((2 * n)) 60 || true
    for f in c0 c1 c2 c3; do settle "$W/$f.dump"; done
    for f in c0 c1 c2 c3; do end_capture "$f"; done
    printf '100 %s\n300 %s\n' "$n" "$n" >"$W/ids0"
    printf '200 %s\n400 %s\n' "$n" "$n" >"$W/ids1"
    [[ $(ids_in "$W/c0.dump") == "$(cat "$W/ids0")" ]] || fail "$IF0 holds $(ids_in "$W/c0.dump" | tr '\n' ' '), expected its own 100 and client a's 300, $n each"
    [[ $(ids_in "$W/c2.dump") == "$(cat "$W/ids0")" ]] || fail "client a's $IF2 holds $(ids_in "$W/c2.dump" | tr '\n' ' '), expected 100 and 300 ($IF0's bus), $n each"
    [[ $(ids_in "$W/c1.dump") == "$(cat "$W/ids1")" ]] || fail "$IF1 holds $(ids_in "$W/c1.dump" | tr '\n' ' '), expected its own 200 and client b's 400, $n each"
    [[ $(ids_in "$W/c3.dump") == "$(cat "$W/ids1")" ]] || fail "client b's $x holds $(ids_in "$W/c3.dump" | tr '\n' ' '), expected 200 and 400 ($IF1's bus), $n each"
    # Order kept on every path.
    only_ids "$W/c0.dump" 100 >"$W/p100.src"; only_ids "$W/c2.dump" 100 >"$W/p100.dst"
    only_ids "$W/c1.dump" 200 >"$W/p200.src"; only_ids "$W/c3.dump" 200 >"$W/p200.dst"
    only_ids "$W/c2.dump" 300 >"$W/p300.src"; only_ids "$W/c0.dump" 300 >"$W/p300.dst"
    only_ids "$W/c3.dump" 400 >"$W/p400.src"; only_ids "$W/c1.dump" 400 >"$W/p400.dst"
    same "$IF0 -> client a ($IF2)" "$W/p100.src" "$W/p100.dst"
    same "$IF1 -> client b ($x)" "$W/p200.src" "$W/p200.dst"
    same "client a ($IF2) -> $IF0" "$W/p300.src" "$W/p300.dst"
    same "client b ($x) -> $IF1" "$W/p400.src" "$W/p400.dst"
    say "$n frames from each of 4 buses reached exactly their own bus's other side, in order; none crossed"
    stop_clean a
    stop_clean b
    stop_clean s
    for f in "$IF0" "$IF1"; do
        grep -q "final stats for bus $f: from_bus=$n to_bus=$n " "$W/s.log" ||
            fail "no 'final stats for bus $f: from_bus=$n to_bus=$n' line: $(grep "final stats for bus $f" "$W/s.log")"
    done
    expect_stat s from_bus $((2 * n))
    expect_stat s dropped 0
    ip link del dev "$x" 2>/dev/null || true
}

# ======================================================================================
# Runner
# ======================================================================================
usage() { sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$SELF"; }

reset_interfaces() {
    local i
    for i in "$IF0" "$IF1" "$IF2"; do
        [[ -d /sys/class/net/$i ]] || { ip link add dev "$i" type vcan && ip link set dev "$i" mtu 72; } 2>/dev/null
        command -v tc >/dev/null && tc qdisc del dev "$i" root 2>/dev/null
        ip link set dev "$i" up 2>/dev/null
    done
}

sc_canip() {
    write_vectors "$W/vectors"
    grep -v -e '##' -e '#R' "$W/vectors" >"$W/classic"  # all the canip wire carries
    local n nc nfd nrtr
    n=$(count "$W/vectors")
    nc=$(count "$W/classic")
    nfd=$(grep -c '##' "$W/vectors")
    nrtr=$(grep -c '#R' "$W/vectors")
    server s "$IF0" "$PORT"
    spawn c "$TCPCAN" client --can "$IF1" --host 127.0.0.1 --port "$PORT" --dialect canip "${LOGOPT[@]}"
    poll 15 grep -q 'canip 4.1 agreed, features SEQ' "$W/c.log" || fail "c logged no canip agreement within 15 s"
    poll 5 grep -q 'canip 4.1 agreed, features SEQ' "$W/s.log" || fail "s did not take c for a canip client"
    client t "$IF2" "$PORT"
    wait_agreed t 1 2
    ready "$IF0" 1
    ready "$IF1" 1
    ready "$IF2" 1
    capture b "$IF1"
    capture t2 "$IF2"
    send "$IF0" "$W/vectors"
    wait_count "$W/t2.dump" "$n" 10 || true
    wait_count "$W/b.dump" "$nc" 10 || true
    settle "$W/b.dump"
    settle "$W/t2.dump"
    end_capture b
    end_capture t2
    same "$IF0 -> server -> canip client -> $IF1" "$W/classic" "$W/b.dump"
    same "$IF0 -> server -> tcpcan client -> $IF2" "$W/vectors" "$W/t2.dump"
    capture a "$IF0"
    capture t3 "$IF2"
    send "$IF1" "$W/classic"
    wait_count "$W/a.dump" "$nc" 10 || true
    wait_count "$W/t3.dump" "$nc" 10 || true
    settle "$W/a.dump"
    settle "$W/t3.dump"
    end_capture a
    end_capture t3
    same "$IF1 -> canip client -> server -> $IF0" "$W/classic" "$W/a.dump"
    same "$IF1 -> canip client -> server -> tcpcan client -> $IF2" "$W/classic" "$W/t3.dump"
    grep -q "towards canip peer: CAN FD $nfd, remote $nrtr, error frames 0" "$W/s.log" ||
        fail "s: no drop line 'towards canip peer: CAN FD $nfd, remote $nrtr, error frames 0'"
    stop_clean c
    stop_clean t
    stop_clean s
    expect_stat s from_bus "$n"
    expect_stat s to_bus "$nc"
    expect_stat s dropped $((nfd + nrtr))
    expect_stat c from_bus "$nc"
    expect_stat c to_bus "$nc"
    expect_stat c dropped 0
    say "canip: $nc classic frames exact both ways beside a tcpcan client; $nfd FD and $nrtr RTR frames dropped towards canip and counted"

    # The client side of the rule: `tcpcan client` with no --dialect meets a server that
    # greets at once (a canip listener) and becomes a canip client.
    local port2=$((PORT + 1))
    spawn s2 "$TCPCAN" server --can "$IF0" --bind 127.0.0.1 --listen "canip@$port2" "${LOGOPT[@]}"
    wait_listening s2 "$port2"
    spawn d "$TCPCAN" client --can "$IF1" --host 127.0.0.1 --port "$port2" "${LOGOPT[@]}"
    poll 15 grep -q "speaks canip_peer's protocol: canip 4.1" "$W/d.log" || fail "d did not take the greeting for canip"
    poll 5 grep -q 'canip 4.1 agreed, features SEQ' "$W/d.log" || fail "d logged no canip agreement"
    ready "$IF0" 1
    ready "$IF1" 1
    capture e "$IF1"
    send "$IF0" "$W/classic"
    wait_count "$W/e.dump" "$nc" 10 || true
    settle "$W/e.dump"
    end_capture e
    same "$IF0 -> canip listener -> detecting client -> $IF1" "$W/classic" "$W/e.dump"
    capture f "$IF0"
    send "$IF1" "$W/classic"
    wait_count "$W/f.dump" "$nc" 10 || true
    settle "$W/f.dump"
    end_capture f
    same "$IF1 -> detecting client -> canip listener -> $IF0" "$W/classic" "$W/f.dump"
    stop_clean d
    stop_clean s2
    say "canip: a client without --dialect took a canip listener's greeting; $nc frames exact both ways"
}

run_one() {  # NAME WORKDIR PORT (in a fresh process, its own process group)
    local name=$1
    W=$2
    PORT=$3
    trap cleanup_scenario EXIT
    trap 'exit 143' TERM
    "sc_$name"
}

main() {
    local wanted=() list=0
    while (($#)); do
        case $1 in
            --tcpcan) TCPCAN=$2; shift 2 ;;
            --ifs) IFS_LIST=$2; shift 2 ;;
            --timeout) SC_TIMEOUT=$2; shift 2 ;;
            --list) list=1; shift ;;
            -h|--help) usage; exit 0 ;;
            --run-one) shift; IFS=, read -r IF0 IF1 IF2 <<<"$IFS_LIST"; export TCPCAN IF0 IF1 IF2; run_one "$@"; exit ;;
            -*) echo "unknown option $1" >&2; exit 2 ;;
            *) wanted+=("$1"); shift ;;
        esac
    done
    local s
    if ((list)); then
        for s in "${SCENARIOS[@]}"; do printf '%-15s %s\n' "$s" "${ABOUT[$s]}"; done
        exit 0
    fi
    ((${#wanted[@]})) || wanted=("${SCENARIOS[@]}")
    for s in "${wanted[@]}"; do
        [[ -n ${ABOUT[$s]:-} ]] || { echo "unknown scenario '$s' (see --list)" >&2; exit 2; }
    done
    IFS=, read -r IF0 IF1 IF2 <<<"$IFS_LIST"
    [[ -n $IF0 && -n $IF1 && -n $IF2 ]] || { echo "--ifs needs three interfaces" >&2; exit 2; }
    if [[ $TCPCAN != */* ]]; then TCPCAN=$(command -v "$TCPCAN" || echo "$TCPCAN"); fi
    [[ $TCPCAN == /* || ! -e $TCPCAN ]] || TCPCAN=$PWD/$TCPCAN
    local c
    for c in cansend candump cangen canplayer ip; do
        command -v "$c" >/dev/null || { echo "$c is missing (can-utils, iproute2)" >&2; exit 2; }
    done

    local root passed=0 failed=0 idx=0 failures=() pid rc t0 t1 end f reason limit
    root=$(mktemp -d "${TMPDIR:-/tmp}/tcpcan-scenarios.XXXXXX")
    echo "tcpcan SocketCAN scenarios: tcpcan=$TCPCAN interfaces=$IF0,$IF1,$IF2 kernel=$(uname -r)"
    for s in "${wanted[@]}"; do
        idx=$((idx + 1))
        reset_interfaces
        mkdir -p "$root/$s"
        echo "=== $s: ${ABOUT[$s]}"
        t0=$(date +%s)
        setsid bash "$SELF" --tcpcan "$TCPCAN" --ifs "$IF0,$IF1,$IF2" --run-one "$s" "$root/$s" \
            $((PORT_BASE + 10 * idx)) &
        pid=$!
        limit=$((SC_TIMEOUT * ${TIMEOUT_FACTOR[$s]:-1}))
        end=$((SECONDS + limit))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null
            sleep 1
            kill -KILL -- "-$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            rc=timeout
            echo "timed out after ${limit}s" >"$root/$s/reason"
            for f in "$root/$s"/*.log; do
                [[ -s $f ]] || continue
                echo "  --- last lines of $(basename "$f") ---"
                tail -n 12 "$f" | cut -c1-200 | sed 's/^/  | /'
            done
        else
            wait "$pid"
            rc=$?
        fi
        kill -KILL -- "-$pid" 2>/dev/null   # anything the scenario left behind
        t1=$(date +%s)
        if [[ $rc == 0 ]]; then
            echo "PASS $s ($((t1 - t0)) s)"
            passed=$((passed + 1))
        else
            reason=$(head -n 1 "$root/$s/reason" 2>/dev/null)
            echo "FAIL $s: ${reason:-exit status $rc} ($((t1 - t0)) s)"
            failed=$((failed + 1))
            failures+=("$s")
        fi
    done
    reset_interfaces
    if [[ ${TCPCAN_KEEP_WORK:-0} == 1 ]]; then echo "work folders kept in $root"; else rm -rf "$root"; fi
    ((failed)) && echo "failed: ${failures[*]}"
    echo "$passed passed, $failed failed"
    ((failed == 0))
}

main "$@"

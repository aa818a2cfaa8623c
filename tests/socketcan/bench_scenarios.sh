#!/usr/bin/env bash
# The real-vcan benchmark's scenarios: runs inside the SocketCAN test VM (bench.sh starts it
# through vm.sh) or natively as root on two vcan interfaces. Not a test: it measures, it
# asserts nothing about speed.
#
#   bench_scenarios.sh --probe PATH --tcpcan PATH [--baseline PATH] [--ifs IF0,IF1]
#                      [--seconds S] [--overload-frames N] [--latency-frames N] [--repeat R]
#                      [--syscalls 1|0] [--generator probe|cangen] [--out DIR]
#                      [--only SCENARIO,...] [--policy normal|batch]
#                      [--baseline-policy normal|batch] [--nice N] [--baseline-nice N] [--load N]
#
# Systems, each run in turn for every scenario (so a change is judged against the others in
# the same boot, never against another day's numbers):
#   vcan      the generator writes IF0, the probe reads IF0: the kernel and the harness alone
#   cangw     the kernel's CAN gateway (can-gw) copies IF0 to IF1 (`cangw -A -s IF0 -d IF1 -e`,
#             and `-X` for FD; -e echoes, which is how frames reach sockets on a vcan)
#   tcpcan    `tcpcan server --can IF0` and `tcpcan client --can IF1` over 127.0.0.1
#   baseline  the same with the --baseline binary (e.g. the previous release)
# --policy / --baseline-policy (TCPCAN_BENCH_POLICY, TCPCAN_BENCH_BASELINE_POLICY): the
# scheduling policy the measured / the baseline tcpcan runs under, `normal` (default) or
# `batch` (started through `chrt --batch 0`, as a deployment would with chrt or systemd's
# CPUSchedulingPolicy=batch). --nice / --baseline-nice N (TCPCAN_BENCH_NICE,
# TCPCAN_BENCH_BASELINE_NICE): that tcpcan's nice value, -20 to 19 (default 0; systemd's
# Nice=). --load N (TCPCAN_BENCH_LOAD): N processes that only spin run
# beside every run of every system, a machine busy with other work; the machine's busy time
# then includes them.
# Scenarios (S seconds of traffic each, default 4): 1,000, 2,000 and 5,000 frames/s and
# overload (cangen -g 0, a fixed number of frames), each with classic 8-byte and FD 64-byte
# frames; and latency at 1,000 frames/s with bench_probe's own sequenced frames. The paced
# rates come from `bench_probe send` (an absolute schedule), because cangen sleeps a fixed gap
# after every frame and under emulation on a busy host that gave 500 frames/s for `-g 1`;
# --generator cangen (TCPCAN_BENCH_GENERATOR) uses cangen with a -g/-c pace calibrated once per
# boot instead. Either way the rate really sent is measured and shown.
#
# Measured per run, over the traffic window:
#   sent      frames the generator put on IF0 (IF0's tx_packets)
#   recv      frames the probe read at the far end; recv/s is their rate, first to last
#   lost      sent - recv; `counted` is what tcpcan's final statistics lines call dropped
#             (both processes), `uncounted` = lost - counted - kernel backlog drops
#   cpu       utime+stime of the tcpcan processes (/proc/PID/stat) per received frame, in µs
#             (user_us in the TSV: utime alone, the share spent in tcpcan's own code);
#             also their on-CPU time from /proc/PID/task/*/schedstat, and the whole machine's
#             busy time (/proc/schedstat's time running tasks on every CPU, softirqs included,
#             or /proc/stat's ticks; this is the only CPU figure for vcan and cangw, whose
#             work is done in the kernel)
#   syscalls  system calls of the tcpcan processes per frame: an ftrace histogram on
#             raw_syscalls:sys_enter, keyed by thread and system call and filtered to the
#             tcpcan threads, set only for their runs (tracefs, CONFIG_HIST_TRIGGERS); the
#             breakdown by call goes into the TSV. --syscalls 0 leaves tracing off.
#   wakeups   voluntary + involuntary context switches of the tcpcan processes per frame
#             (/proc/PID/task/*/status)
#   latency   p50/p90/p99/p99.9/max in µs, write() on IF0 to read() at the far end (bench_probe),
#             at 1,000 frames/s (TCPCAN_BENCH_LATENCY_RATE changes that)
# Output: progress lines, then the TSV (one row per run) and a summary table (medians over
# the repeats, and tcpcan/baseline ratios), both between marker lines so bench.sh can cut them
# out of a VM console; with --out DIR also the files DIR/vcan-bench.tsv and DIR/vcan-bench.txt.
set -uo pipefail
export LC_ALL=C

PROBE= TCPCAN= BASELINE= OUT=
IF0=vcan0 IF1=vcan1
SECONDS_PER_RUN=${TCPCAN_BENCH_SECONDS:-4}
OVERLOAD_FRAMES=${TCPCAN_BENCH_OVERLOAD_FRAMES:-40000}
LATENCY_FRAMES=${TCPCAN_BENCH_LATENCY_FRAMES:-4000}
LATENCY_RATE=${TCPCAN_BENCH_LATENCY_RATE:-1000}
REPEAT=${TCPCAN_BENCH_REPEAT:-1}
SYSCALLS=${TCPCAN_BENCH_SYSCALLS:-1}
ONLY=${TCPCAN_BENCH_ONLY:-}
GENERATOR=${TCPCAN_BENCH_GENERATOR:-probe}
POLICY=${TCPCAN_BENCH_POLICY:-normal}
BASELINE_POLICY=${TCPCAN_BENCH_BASELINE_POLICY:-normal}
LOAD=${TCPCAN_BENCH_LOAD:-0}
NICE=${TCPCAN_BENCH_NICE:-0}
BASELINE_NICE=${TCPCAN_BENCH_BASELINE_NICE:-0}
PORT=24000

while (($#)); do
    case $1 in
        --probe) PROBE=$2; shift 2 ;;
        --tcpcan) TCPCAN=$2; shift 2 ;;
        --baseline) BASELINE=$2; shift 2 ;;
        --ifs) IFS=, read -r IF0 IF1 <<<"$2"; shift 2 ;;
        --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
        --overload-frames) OVERLOAD_FRAMES=$2; shift 2 ;;
        --latency-frames) LATENCY_FRAMES=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --syscalls) SYSCALLS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --generator) GENERATOR=$2; shift 2 ;;
        --policy) POLICY=$2; shift 2 ;;
        --baseline-policy) BASELINE_POLICY=$2; shift 2 ;;
        --load) LOAD=$2; shift 2 ;;
        --nice) NICE=$2; shift 2 ;;
        --baseline-nice) BASELINE_NICE=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "bench_scenarios.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
for v in SECONDS_PER_RUN OVERLOAD_FRAMES LATENCY_FRAMES LATENCY_RATE REPEAT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench_scenarios.sh: $v must be a positive whole number" >&2; exit 2; }
done
[[ $GENERATOR == probe || $GENERATOR == cangen ]] || { echo "bench_scenarios.sh: --generator must be probe or cangen" >&2; exit 2; }
[[ -x $PROBE && -x $TCPCAN ]] || { echo "bench_scenarios.sh: --probe and --tcpcan must name executables" >&2; exit 2; }
[[ -z $BASELINE || -x $BASELINE ]] || { echo "bench_scenarios.sh: --baseline $BASELINE is not executable" >&2; exit 2; }
for p in "$POLICY" "$BASELINE_POLICY"; do
    [[ $p == normal || $p == batch ]] || { echo "bench_scenarios.sh: a policy is normal or batch, not '$p'" >&2; exit 2; }
done
for n in "$NICE" "$BASELINE_NICE"; do
    [[ $n =~ ^-?[0-9]+$ ]] && ((n >= -20 && n <= 19)) || { echo "bench_scenarios.sh: a nice value is -20 to 19, not '$n'" >&2; exit 2; }
done
[[ $LOAD =~ ^[0-9]+$ ]] || { echo "bench_scenarios.sh: --load takes a number of spinning processes, not '$LOAD'" >&2; exit 2; }
if [[ $POLICY == batch || $BASELINE_POLICY == batch ]] && ! command -v chrt >/dev/null; then
    echo "bench_scenarios.sh: the batch policy needs chrt (util-linux)" >&2; exit 2
fi
for c in cangen cangw ip; do
    command -v "$c" >/dev/null || { echo "bench_scenarios.sh: $c is missing (can-utils, iproute2)" >&2; exit 2; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/tcpcan-bench.XXXXXX")
TSV=$W/vcan-bench.tsv
TABLE=$W/vcan-bench.txt
SYSTEMS=(vcan cangw tcpcan)
[[ -n $BASELINE ]] && SYSTEMS+=(baseline)
SCENARIOS=(classic-1000 classic-2000 classic-5000 classic-max fd-1000 fd-2000 fd-5000 fd-max latency-classic latency-fd)
if [[ -n $ONLY ]]; then IFS=, read -r -a SCENARIOS <<<"$ONLY"; fi

say() { printf 'bench: %s\n' "$*"; }
now_us() { local t=${EPOCHREALTIME/./}; printf '%s' "$((10#$t))"; }

# --- measurements of a set of processes ----------------------------------------------------
PIDS=()       # the tcpcan processes of the current run
tids() { local p t; for p in "${PIDS[@]}"; do for t in /proc/"$p"/task/[0-9]*; do printf '%s\n' "${t##*/}"; done; done; }
proc_ticks() {  # utime+stime of PIDS in clock ticks; with "user", utime alone
    local p n=0 rest
    for p in "${PIDS[@]}"; do
        rest=$(cat /proc/"$p"/stat 2>/dev/null) || continue
        rest=${rest##*) }
        read -r -a f <<<"$rest"
        n=$((n + f[11]))   # fields 14 and 15 of stat, counted after "pid (comm) "
        [[ ${1:-} == user ]] || n=$((n + f[12]))
    done
    printf '%s' "$n"
}
proc_sched_ns() {  # on-CPU time of every thread of PIDS, in ns
    local p f n=0 a
    for p in "${PIDS[@]}"; do
        for f in /proc/"$p"/task/*/schedstat; do
            read -r a _ 2>/dev/null <"$f" && n=$((n + a))
        done
    done
    printf '%s' "$n"
}
proc_switches() {
    local p n=0 v
    for p in "${PIDS[@]}"; do
        v=$(cat /proc/"$p"/task/*/status 2>/dev/null | awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ {n += $2} END {print n + 0}')
        n=$((n + v))
    done
    printf '%s' "$n"
}
system_busy_ns() {  # time every CPU spent running tasks, in ns
    # /proc/schedstat's rq_cpu_time (field 7 of a cpu line; the idle task is not counted)
    # comes from the scheduler's clock. /proc/stat's tick counts are the fallback: with
    # instruction-counted time in the VM (bench.sh) they swing between all busy and all idle.
    local ns
    ns=$(awk '$1 ~ /^cpu[0-9]+$/ { n += $8; seen = 1 } END { if (seen) printf "%.0f", n }' /proc/schedstat 2>/dev/null)
    if [[ -n $ns ]]; then printf '%s' "$ns"; return; fi
    local _ user nice system idle iowait irq softirq steal hz
    read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
    hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
    printf '%s' $(((user + nice + system + irq + softirq + steal) * (1000000000 / hz)))
}
backlog_drops() {
    awk 'function hex(s,  i, v) { v = 0; s = toupper(s)
             for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1
             return v }
         { n += hex($2) } END { print n + 0 }' /proc/net/softnet_stat 2>/dev/null || echo 0
}
tx_packets() { local n; read -r n </sys/class/net/"$1"/statistics/tx_packets; printf '%s' "$n"; }

# System calls: an ftrace histogram on raw_syscalls:sys_enter, set up for the tcpcan processes
# of one run only (a filter on their thread ids) just before its window, read and removed just
# after it, so the references run without tracing and the histogram stays small.
TRACE=
TRIGGER=
syscall_setup() {
    ((SYSCALLS)) || return 0
    local t=/sys/kernel/tracing
    [[ -d $t/events ]] || mount -t tracefs nodev "$t" 2>/dev/null || true
    if [[ ! -d $t/events && -d /sys/kernel/debug ]]; then
        mount -t debugfs nodev /sys/kernel/debug 2>/dev/null || true
        t=/sys/kernel/debug/tracing
    fi
    if [[ -w $t/events/raw_syscalls/sys_enter/trigger ]] &&
        echo 'hist:keys=id.syscall' >"$t/events/raw_syscalls/sys_enter/trigger" 2>/dev/null &&
        echo '!hist:keys=id.syscall' >"$t/events/raw_syscalls/sys_enter/trigger" 2>/dev/null; then
        TRACE=$t/events/raw_syscalls/sys_enter
        say "system calls counted with an ftrace histogram ($TRACE), during tcpcan runs only"
    else
        say "no ftrace histogram (tracefs or CONFIG_HIST_TRIGGERS missing): system calls are not counted"
    fi
}
syscall_start() {
    [[ -n $TRACE && ${#PIDS[@]} -gt 0 ]] || return 0
    local t filter=
    for t in $(tids); do filter+="${filter:+ || }common_pid == $t"; done
    TRIGGER="hist:keys=common_pid,id.syscall:size=1024 if $filter"
    echo "$TRIGGER" >"$TRACE/trigger" || { say "could not set the trigger $TRIGGER"; TRIGGER=; }
}
syscall_stop() {  # FILE: "name count" lines summed over the traced threads
    : >"$1"
    [[ -n $TRIGGER ]] || return 0
    awk '
        /common_pid:/ {
            name = $0; sub(/.*id: */, "", name); sub(/ .*/, "", name); sub(/^sys_/, "", name)
            n = $0; sub(/.*hitcount: */, "", n); sub(/[^0-9].*/, "", n)
            c[name] += n
        }
        /^ *Dropped: *[1-9]/ { print "DROPPED", 1 }
        END { for (k in c) print k, c[k] }' "$TRACE/hist" >"$1"
    echo "!$TRIGGER" >"$TRACE/trigger" 2>/dev/null
    TRIGGER=
}
syscall_delta() {  # COUNTS FRAMES -> "total_per_frame breakdown"
    awk -v frames="$2" '
        $1 == "DROPPED" { print "histogram-overflowed -"; exit }
        { c[$1] = $2; t += $2 }
        END {
            if (frames <= 0) { print "- -"; exit }
            s = ""
            for (k in c) if (c[k] / frames >= 0.005) s = s (s == "" ? "" : ",") sprintf("%s:%.2f", k, c[k] / frames)
            printf "%.2f %s\n", t / frames, (s == "" ? "-" : s)
        }' "$1"
}

# --- the generator's pace ---------------------------------------------------------------------
# cangen sleeps -g ms after every frame (or every -c frames), and under emulation each sleep
# overshoots by a few hundred µs, so `-g 0.5` gives far less than 2,000 frames/s. The
# overshoot is measured once per boot (vcan alone); each rate then gets the smallest burst
# count k and the gap with which k frames per (gap + overshoot) make that rate. The same
# arguments serve every system, and the rate actually sent is measured in every run.
OVERSHOOT_US=0
calibrate() {
    local n=300 t0 t1
    t0=$(now_us)
    cangen "$IF0" -I 123 -L 8 -D i -g 1 -n "$n" -p 100 >/dev/null 2>&1
    t1=$(now_us)
    OVERSHOOT_US=$(((t1 - t0) / n - 1000))
    ((OVERSHOOT_US > 0)) || OVERSHOOT_US=0
    say "cangen -g 1 sleeps $((OVERSHOOT_US + 1000)) µs per frame here: overshoot $OVERSHOOT_US µs"
}
pace_for() {  # RATE -> PACE=(-g GAP_MS -c K)
    awk -v r="$1" -v o="$OVERSHOOT_US" 'BEGIN {
        p = 1e6 / r; k = 1
        while (k * p < o + 50) k++
        printf "-g %.3f -c %d\n", (k * p - o) / 1000, k }'
}

# --- the systems ---------------------------------------------------------------------------
SYSTEM_PIDS=()
stats_line() { grep ' stats: ' "$1" 2>/dev/null | tail -n 1; }
stat_of() { stats_line "$1" | tr ' ' '\n' | sed -n "s/^$2=\([0-9][0-9]*\).*/\1/p" | tail -n 1; }

start_system() {  # SYSTEM -> sets RX_IF, PIDS
    local system=$1 bin i p
    PIDS=()
    RX_IF=$IF1
    case $system in
        vcan) RX_IF=$IF0 ;;
        cangw)
            cangw -F >/dev/null 2>&1
            cangw -A -s "$IF0" -d "$IF1" -e >/dev/null 2>&1 || { say "cangw -A failed"; return 1; }
            cangw -A -s "$IF0" -d "$IF1" -e -X >/dev/null 2>&1 || { say "cangw -A -X (CAN FD) failed"; return 1; } ;;
        tcpcan|baseline)
            bin=$TCPCAN
            # Options for this system's server and client (word-split on purpose).
            local extra=(${TCPCAN_BENCH_ARGS:-}) policy=$POLICY run=()
            if [[ $system == baseline ]]; then
                bin=$BASELINE
                extra=(${TCPCAN_BENCH_BASELINE_ARGS:-})
                policy=$BASELINE_POLICY
            fi
            # chrt and nice exec the program, so $! is still tcpcan's process id.
            [[ $policy == batch ]] && run=(chrt --batch 0)
            local nice_value=$NICE
            [[ $system == baseline ]] && nice_value=$BASELINE_NICE
            [[ $nice_value != 0 ]] && run=(nice -n "$nice_value" "${run[@]}")
            PORT=$((PORT + 1))
            rm -f "$W/server.log" "$W/client.log"  # the last run's lines must not answer for this one's
            "${run[@]}" "$bin" server --can "$IF0" --bind 127.0.0.1 --port "$PORT" "${extra[@]}" >"$W/server.log" 2>&1 </dev/null &
            PIDS+=($!)
            for ((i = 0; i < 100; i++)); do
                grep -qsi 'listening' "$W/server.log" && break
                awk -v p="$(printf ':%04X' "$PORT")" '$4 == "0A" && substr($2, length($2) - 4) == p {f = 1} END {exit !f}' \
                    /proc/net/tcp 2>/dev/null && break
                sleep 0.1
            done
            "${run[@]}" "$bin" client --can "$IF1" --host 127.0.0.1 --port "$PORT" "${extra[@]}" >"$W/client.log" 2>&1 </dev/null &
            PIDS+=($!)
            for ((i = 0; i < 300; i++)); do
                grep -qsE 'version [0-9]+ agreed' "$W/client.log" && break
                sleep 0.1
            done
            grep -qsE 'version [0-9]+ agreed' "$W/client.log" || {
                say "$system: the client did not agree on a version within 30 s"
                tail -n 5 "$W/server.log" "$W/client.log"
                for p in "${PIDS[@]}"; do  # where each process waits
                    say "pid $p: $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null | cut -c1-60) state $(awk '{print $3}' /proc/"$p"/stat 2>/dev/null) wchan $(cat /proc/"$p"/wchan 2>/dev/null)"
                    head -n 12 /proc/"$p"/stack 2>/dev/null
                done
                stop_system "$system"
                return 1
            }
            sleep 0.3 ;;  # let the server finish its side of the handshake
    esac
    return 0
}

COUNTED=-
stop_system() {  # SYSTEM: ends it; for tcpcan, COUNTED = drops both statistics lines name
    local system=$1 p i
    COUNTED=-
    case $system in
        cangw) cangw -F >/dev/null 2>&1 ;;
        tcpcan|baseline)
            for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
            for p in "${PIDS[@]}"; do
                for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
            done
            local ds dc
            ds=$(stat_of "$W/server.log" dropped) dc=$(stat_of "$W/client.log" dropped)
            [[ -n $ds && -n $dc ]] || say "$system: no final statistics line (server: ${ds:-none}, client: ${dc:-none})"
            COUNTED=$((${ds:-0} + ${dc:-0}))
            if ((COUNTED != 0)); then
                say "$system: server: $(stats_line "$W/server.log" | sed 's/.* stats: //')"
                say "$system: client: $(stats_line "$W/client.log" | sed 's/.* stats: //')"
                grep -h 'WARNING\|ERROR' "$W/server.log" "$W/client.log" | tail -n 6
            fi ;;
    esac
    PIDS=()
}

# A busy machine (--load N): N processes that only spin, beside every system's run, started
# just before its window and ended just after it. Each is also ended by timeout, so none
# outlives the benchmark.
LOAD_PIDS=()
load_start() {
    local i
    for ((i = 0; i < LOAD; i++)); do
        timeout 600 bash -c 'while :; do :; done' &
        LOAD_PIDS+=($!)
    done
}
load_stop() {
    local p
    for p in "${LOAD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    LOAD_PIDS=()
}

# --- one run -------------------------------------------------------------------------------
HEADER="rep	scenario	system	sent	recv	send_fps	recv_fps	lost	counted	backlog	uncounted	cpu_us	user_us	sched_us	machine_us	syscalls	wakeups	p50_us	p90_us	p99_us	p999_us	max_us	syscalls_by_call"

# The machine's busy time is read last before and first after the window, so the snapshots'
# own processes (cheap as they are) stay out of it as far as possible.
before_window() {
    load_start
    B_TICKS=$(proc_ticks) B_USER=$(proc_ticks user) B_SCHED=$(proc_sched_ns) B_SW=$(proc_switches)
    B_BACKLOG=$(backlog_drops) B_TX=$(tx_packets "$IF0")
    syscall_start
    B_BUSY=$(system_busy_ns)
}
after_window() {
    A_BUSY=$(system_busy_ns)
    A_TICKS=$(proc_ticks) A_USER=$(proc_ticks user) A_SCHED=$(proc_sched_ns) A_SW=$(proc_switches)
    A_BACKLOG=$(backlog_drops) A_TX=$(tx_packets "$IF0")
    syscall_stop "$W/syscalls"
    load_stop
}

# per_frame VALUE FRAMES SCALE: VALUE*SCALE/FRAMES with 2 decimals, or - without frames
per_frame() { awk -v v="$1" -v n="$2" -v s="$3" 'BEGIN { if (n > 0) printf "%.2f", v * s / n; else printf "-" }'; }

record() {  # rep scenario system recv send_fps recv_fps p50 p90 p99 p999 max
    local rep=$1 scenario=$2 system=$3 recv=$4 send_fps=$5 recv_fps=$6 hz sent lost backlog uncounted
    local cpu=- user=- sched=- wake=- sys=- by=- machine
    hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
    sent=$((A_TX - B_TX))
    lost=$((sent - recv))
    backlog=$((A_BACKLOG - B_BACKLOG))
    uncounted=$((lost - backlog))
    [[ $COUNTED != - ]] && uncounted=$((uncounted - COUNTED))
    machine=$(per_frame $((A_BUSY - B_BUSY)) "$recv" 0.001)
    if [[ $system == tcpcan || $system == baseline ]]; then
        cpu=$(per_frame $((A_TICKS - B_TICKS)) "$recv" $((1000000 / hz)))
        user=$(per_frame $((A_USER - B_USER)) "$recv" $((1000000 / hz)))
        sched=$(per_frame $((A_SCHED - B_SCHED)) "$recv" 0.001)
        wake=$(per_frame $((A_SW - B_SW)) "$recv" 1)
        if [[ -s $W/syscalls ]]; then read -r sys by <<<"$(syscall_delta "$W/syscalls" "$recv")"; fi
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$rep" "$scenario" "$system" "$sent" "$recv" "$send_fps" "$recv_fps" "$lost" "$COUNTED" "$backlog" \
        "$uncounted" "$cpu" "$user" "$sched" "$machine" "$sys" "$wake" "$7" "$8" "$9" "${10}" "${11}" "$by" >>"$TSV"
    say "$(printf '%-16s %-9s sent %6s recv %6s (%6s/s) lost %5s (counted %s) cpu %6s µs/frame, syscalls %5s, wakeups %5s/frame%s' \
        "$scenario" "$system" "$sent" "$recv" "$recv_fps" "$lost" "$COUNTED" "$cpu" "$sys" "$wake" \
        "$([[ $7 != - ]] && printf ', p50/p99 %s/%s µs' "$7" "$9")")"
}

kv() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | tail -n 1; }

run_traffic() {  # rep scenario system
    local rep=$1 scenario=$2 system=$3 kind rate frames pace=() opts=() t0 t1 probe_pid recv send_fps
    kind=${scenario%%-*}
    rate=${scenario#*-}
    opts=(-I 123 -L 8 -D i)
    [[ $kind == fd ]] && opts=(-f -I 123 -L 64 -D i)
    if [[ $rate == max ]]; then pace=(-g 0) frames=$OVERLOAD_FRAMES
    else frames=$((rate * SECONDS_PER_RUN)) pace=($(pace_for "$rate"))
    fi
    start_system "$system" || return 1
    "$PROBE" count "$RX_IF" --expect "$frames" --idle-ms 1500 --max-ms $((SECONDS_PER_RUN * 4000 + 60000)) \
        >"$W/probe.out" 2>&1 &
    probe_pid=$!
    for ((i = 0; i < 50; i++)); do grep -qs '^ready' "$W/probe.out" && break; sleep 0.1; done
    before_window
    t0=$(now_us)
    if [[ $rate == max || $GENERATOR == cangen ]]; then
        timeout $((SECONDS_PER_RUN * 4 + 60)) cangen "$IF0" "${opts[@]}" "${pace[@]}" -n "$frames" -p 100 >"$W/generator.out" 2>&1 ||
            say "cangen ended with status $?: $(head -c 200 "$W/generator.out")"
    else
        opts=()
        [[ $kind == fd ]] && opts=(--fd)
        pace=(--rate "$rate")
        timeout $((SECONDS_PER_RUN * 4 + 60)) "$PROBE" send "$IF0" "${opts[@]}" "${pace[@]}" --count "$frames" >"$W/generator.out" 2>&1 ||
            say "bench_probe send ended with status $?: $(head -c 200 "$W/generator.out")"
    fi
    t1=$(now_us)
    wait "$probe_pid"
    [[ $rep == 1 && $system == vcan ]] && say "$scenario: generator ${opts[*]} ${pace[*]}, $frames frames"
    after_window
    stop_system "$system"
    recv=$(kv "$W/probe.out" count)
    [[ -n $recv ]] || { say "the probe printed no count: $(head -c 300 "$W/probe.out")"; recv=0; }
    [[ $(kv "$W/probe.out" overflow) == 0 ]] || say "warning: the probe itself lost frames (overflow); this run cannot be judged"
    send_fps=$(awk -v n="$((A_TX - B_TX))" -v us="$((t1 - t0))" 'BEGIN { printf "%.0f", (us > 0 ? n * 1e6 / us : 0) }')
    record "$rep" "$scenario" "$system" "$recv" "$send_fps" "$(kv "$W/probe.out" fps)" - - - - -
}

run_latency() {  # rep scenario system
    local rep=$1 scenario=$2 system=$3 fd=() recv
    [[ $scenario == latency-fd ]] && fd=(--fd)
    start_system "$system" || return 1
    before_window
    "$PROBE" latency --tx "$IF0" --rx "$RX_IF" --rate "$LATENCY_RATE" --count "$LATENCY_FRAMES" "${fd[@]}" >"$W/probe.out" 2>&1 ||
        say "bench_probe latency: status $?: $(head -c 300 "$W/probe.out")"
    after_window
    stop_system "$system"
    recv=$(kv "$W/probe.out" received)
    [[ -n $recv ]] || recv=0
    record "$rep" "$scenario" "$system" "$recv" "$LATENCY_RATE" "$LATENCY_RATE" "$(kv "$W/probe.out" p50_us)" "$(kv "$W/probe.out" p90_us)" \
        "$(kv "$W/probe.out" p99_us)" "$(kv "$W/probe.out" p999_us)" "$(kv "$W/probe.out" max_us)"
}

# --- summary -------------------------------------------------------------------------------
# Medians over repeats per (scenario, system), then tcpcan/baseline and tcpcan/cangw ratios.
summarize() {
    awk -F'\t' -v have_baseline="${BASELINE:+1}" '
        function median(key, col,   n, i, j, t, a) {
            n = split(vals[key, col], a, " ")
            if (n == 0 || a[1] == "-" || a[1] == "") return "-"
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function ratio(a, b) { return (a == "-" || b == "-" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        {
            key = $col["scenario"] SUBSEP $col["system"]
            if (!(key in seen)) { seen[key] = 1; order[++n] = key }
            if (!($col["scenario"] in sc)) { sc[$col["scenario"]] = 1; scs[++ns] = $col["scenario"] }
            for (c in col) vals[key, c] = vals[key, c] " " $col[c]
        }
        END {
            printf "%-15s %-9s %8s %8s %7s %7s %9s %10s %9s %8s\n", "scenario", "system", "sent/s", "recv/s", "lost", "counted", "cpu µs/f", "machine µs/f", "syscalls/f", "wakeups/f"
            for (s = 1; s <= ns; s++) {
                if (scs[s] ~ /^latency/) continue
                for (i = 1; i <= n; i++) {
                    split(order[i], k, SUBSEP); if (k[1] != scs[s]) continue
                    printf "%-15s %-9s %8s %8s %7s %7s %9s %10s %9s %8s\n", k[1], k[2], median(order[i], "send_fps"), median(order[i], "recv_fps"),
                        median(order[i], "lost"), median(order[i], "counted"), median(order[i], "cpu_us"), median(order[i], "machine_us"),
                        median(order[i], "syscalls"), median(order[i], "wakeups")
                }
            }
            printf "\n%-15s %-9s %7s %7s %7s %7s %7s %6s %9s\n", "latency", "system", "p50 µs", "p90 µs", "p99 µs", "p99.9", "max", "lost", "cpu µs/f"
            for (s = 1; s <= ns; s++) {
                if (scs[s] !~ /^latency/) continue
                for (i = 1; i <= n; i++) {
                    split(order[i], k, SUBSEP); if (k[1] != scs[s]) continue
                    printf "%-15s %-9s %7s %7s %7s %7s %7s %6s %9s\n", k[1], k[2], median(order[i], "p50_us"), median(order[i], "p90_us"),
                        median(order[i], "p99_us"), median(order[i], "p999_us"), median(order[i], "max_us"), median(order[i], "lost"), median(order[i], "cpu_us")
                }
            }
            printf "\nratios (medians): tcpcan/baseline for cpu, syscalls, wakeups, recv/s, p99; tcpcan/cangw for recv/s\n"
            printf "%-15s %8s %9s %8s %8s %7s %12s\n", "scenario", "cpu", "syscalls", "wakeups", "recv/s", "p99", "recv/s÷cangw"
            for (s = 1; s <= ns; s++) {
                t = scs[s] SUBSEP "tcpcan"; b = scs[s] SUBSEP "baseline"; g = scs[s] SUBSEP "cangw"
                if (!(t in seen)) continue
                bl = have_baseline && (b in seen)
                printf "%-15s %8s %9s %8s %8s %7s %12s\n", scs[s],
                    bl ? ratio(median(t, "cpu_us"), median(b, "cpu_us")) : "-",
                    bl ? ratio(median(t, "syscalls"), median(b, "syscalls")) : "-",
                    bl ? ratio(median(t, "wakeups"), median(b, "wakeups")) : "-",
                    bl ? ratio(median(t, "recv_fps"), median(b, "recv_fps")) : "-",
                    bl ? ratio(median(t, "p99_us"), median(b, "p99_us")) : "-",
                    (g in seen) && scs[s] !~ /^latency/ ? ratio(median(t, "recv_fps"), median(g, "recv_fps")) : "-"
            }
        }' "$TSV"
}

# --- main ------------------------------------------------------------------------------------
for i in "$IF0" "$IF1"; do
    [[ -d /sys/class/net/$i ]] || { echo "bench_scenarios.sh: no interface $i" >&2; exit 2; }
done
echo 100000 >/proc/sys/net/core/netdev_max_backlog 2>/dev/null || true
printf '%s\n' "$HEADER" >"$TSV"
say "kernel $(uname -r), $(nproc) CPUs, clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo ?); tcpcan=$TCPCAN baseline=${BASELINE:-none}; ${SECONDS_PER_RUN}s per rate run, $OVERLOAD_FRAMES overload frames, $LATENCY_FRAMES latency frames, $REPEAT repeat(s); policy $POLICY nice $NICE (baseline $BASELINE_POLICY nice $BASELINE_NICE), $LOAD spinning process(es) beside"
[[ $GENERATOR == cangen ]] && calibrate
syscall_setup
for ((rep = 1; rep <= REPEAT; rep++)); do
    for scenario in "${SCENARIOS[@]}"; do
        for system in "${SYSTEMS[@]}"; do
            for attempt in 1 2; do  # a system that did not start gets one more try
                case $scenario in
                    latency-*) run_latency "$rep" "$scenario" "$system" ;;
                    classic-*|fd-*) run_traffic "$rep" "$scenario" "$system" ;;
                    *) say "unknown scenario $scenario"; exit 2 ;;
                esac && break
                say "$scenario $system: could not run (attempt $attempt of 2)"
            done
        done
    done
done
summarize >"$TABLE"
if [[ -n $OUT ]]; then cp "$TSV" "$TABLE" "$OUT"/; fi
echo "=== BENCH-TSV-BEGIN"
cat "$TSV"
echo "=== BENCH-TSV-END"
echo "=== BENCH-TABLE-BEGIN"
cat "$TABLE"
echo "=== BENCH-TABLE-END"
rm -rf "$W"

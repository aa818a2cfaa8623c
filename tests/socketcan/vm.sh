#!/usr/bin/env bash
# Runs a command inside a throw-away qemu VM that has real SocketCAN: a Debian kernel,
# busybox, bash, can-utils, chrt, nice and three vcan interfaces (vcan0 vcan1 vcan2, up, MTU 72).
#
#   vm.sh [options] [--] COMMAND [ARG...]
#
# Options:
#   --add SRC[=NAME]   copy file SRC into the VM as /opt/tcpcan-test/NAME (default NAME:
#                      basename of SRC), together with the shared libraries ldd lists for it
#   --env NAME=VALUE   export NAME=VALUE in the VM before running COMMAND
#   --timeout SEC      hard limit for the whole VM run (default $TCPCAN_VM_TIMEOUT or 840)
#   --kernel-args ARGS more kernel command line arguments (e.g. the benchmark's clocksource=tsc)
#   --prepare          only install packages, download the kernel and build the cached base
#                      initramfs; do not boot
#   -h, --help
#
# COMMAND runs with bash in /tmp (a tmpfs) as root, with /opt/tcpcan-test first in PATH.
# Its console output is streamed to stdout. vm.sh exits with COMMAND's exit status, or
# with 99 when the VM itself failed (no result marker: kernel panic, hang, timeout,
# missing tools). 99 is meson's "hard error" code.
#
# Environment:
#   TCPCAN_VM_CACHE    cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/tcpcan-vm)
#   TCPCAN_VM_ACCEL    kvm or tcg (default: tcg when /sys/module/kvm_pvm exists or /dev/kvm is
#                      unusable, else kvm)
#   TCPCAN_VM_TIMEOUT  default for --timeout
#   TCPCAN_VM_MEM      guest memory in MiB (default 1024); TCPCAN_VM_SMP: vCPUs (default 2)
#   TCPCAN_VM_ICOUNT=N instruction-counted time (TCG only): every guest instruction advances
#                      the guest's clock by 2^N ns, and an idle guest's clock jumps to its next
#                      timer (sleep=off), so the CPU time the guest charges its processes counts
#                      their instructions (kernel included) and the same run repeats whatever
#                      the host is doing; the benchmark uses it (bench.sh). Empty: real time
#                      (default).
#   TCPCAN_VM_KERNEL_PKG  kernel package to use (default: what linux-image-amd64 depends on)
#   TCPCAN_VM_KEEP=1   keep the per-run work folder (initramfs, console log)
#
# Caching: the kernel (vmlinuz + the CAN modules) and the base initramfs live in
# $TCPCAN_VM_CACHE/<kernel-package>_<version>/, the kernel .deb in $TCPCAN_VM_CACHE/download/;
# a second run does not touch the network. A newer Debian kernel (apt-cache names another
# package or version) is downloaded once; without network the newest cached kernel is used.
# Only the small per-run archive (binaries under test, the command) is packed every time.
set -euo pipefail

readonly RECIPE=7          # bump when the base initramfs layout changes
readonly VM_DIR=/opt/tcpcan-test
readonly EXIT_VM=99
readonly PACKAGES=(qemu-system-x86 busybox-static kmod cpio can-utils iproute2)
readonly MODULES=(can can-raw can-dev vcan can-bcm can-gw sch_tbf veth)
readonly CAN_TOOLS=(cansend candump cangen canplayer cangw)
readonly NET_TOOLS=(ip tc)  # iproute2's: txqueuelen, tc qdisc tbf (busybox's lack them)
readonly SCHED_TOOLS=(chrt nice)  # util-linux and coreutils: the benchmark's --policy and --nice (busybox-static has neither)

log() { printf 'vm.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit "$EXIT_VM"; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

adds=() envs=() prepare_only=0 kernel_args=
timeout_s=${TCPCAN_VM_TIMEOUT:-840}
while (($#)); do
    case $1 in
        --add) adds+=("${2:?--add needs SRC[=NAME]}"); shift 2 ;;
        --env) [[ ${2:-} == [A-Za-z_]*=* ]] || die "--env needs NAME=VALUE"; envs+=("$2"); shift 2 ;;
        --timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
        --kernel-args) kernel_args=${2?--kernel-args needs arguments}; shift 2 ;;
        --prepare) prepare_only=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) break ;;
    esac
done
((prepare_only)) || (($#)) || die "no command given (see --help)"
[[ $timeout_s =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds"
[[ $(uname -m) == x86_64 ]] || die "the VM runner supports x86-64 hosts only (this is $(uname -m)); use native vcan"

cache=${TCPCAN_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tcpcan-vm}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# As root, apt would download as user _apt, who may not write into the cache folder.
apt_download_opts=()
if (($(id -u) == 0)); then apt_download_opts=(-oAPT::Sandbox::User=root); fi

as_root() {
    if (($(id -u) == 0)); then "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"
    else return 1
    fi
}

# --- 1. host packages -------------------------------------------------------------------
ensure_packages() {
    if ! command -v dpkg-query >/dev/null; then
        local c
        for c in qemu-system-x86_64 busybox depmod cpio candump ldd gzip timeout; do
            command -v "$c" >/dev/null || die "$c is missing and this is not a Debian-like host"
        done
        return 0
    fi
    local p missing=()
    for p in "${PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing missing packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
        die "could not install ${missing[*]} (need root or passwordless sudo): install them by hand"
}

# --- 2. kernel -----------------------------------------------------------------------------
# Sets kdir to a cache folder holding vmlinuz, kver, modules.order and the module files.
kernel_pkg_name() {
    local name
    name=${TCPCAN_VM_KERNEL_PKG:-}
    if [[ -z $name ]]; then
        name=$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}') || true
    fi
    printf '%s' "$name"
}

newest_cached_kernel() {
    local d best=
    for d in "$cache"/linux-image-*/; do
        [[ -f $d/complete && $(cat "$d/complete") == "${MODULES[*]}" ]] || continue
        if [[ -z $best || $d -nt $best ]]; then best=$d; fi
    done
    printf '%s' "${best%/}"
}

resolve_modules() {  # root kver -> prints module paths (relative to lib/modules/kver), deps first
    local mroot=$1 depfile=$1/modules.dep
    declare -A seen=()
    visit() {
        local rel=$1 line dep
        [[ -n ${seen[$rel]:-} ]] && return 0
        seen[$rel]=1
        line=$(grep -m1 -E "^${rel//./\\.}:" "$depfile") || die "$rel not in modules.dep"
        for dep in ${line#*:}; do visit "$dep"; done
        printf '%s\n' "$rel"
    }
    local m rel alt
    for m in "${MODULES[@]}"; do
        alt=${m//-/_}
        rel=$(grep -m1 -oE "^[^:]*/(${m}|${alt})\.ko(\.[a-z]+)?:" "$depfile" | tr -d :) ||
            die "module $m not found in $depfile"
        visit "$rel"
    done
}

prepare_kernel() {
    local pkg ver key dl deb tmp mroot kver
    pkg=$(kernel_pkg_name)
    ver=
    [[ -n $pkg ]] && ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" {print $2; exit}')
    if [[ -z $pkg || -z $ver || $ver == "(none)" ]]; then
        if [[ -n $(newest_cached_kernel) ]]; then
            kdir=$(newest_cached_kernel)
            log "apt does not name a kernel package; using the cached $(basename "$kdir")"
            return 0
        fi
        log "apt-cache does not know linux-image-amd64; running apt-get update"
        as_root apt-get update -q >&2 || die "apt-get update failed (need root?)"
        pkg=$(kernel_pkg_name)
        [[ -n $pkg ]] || die "cannot find the kernel package (apt-cache depends linux-image-amd64)"
        ver=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" {print $2; exit}')
    fi
    key="${pkg}_${ver//:/%3a}"
    kdir=$cache/$key
    [[ -f $kdir/complete && $(cat "$kdir/complete") == "${MODULES[*]}" ]] && return 0

    log "preparing kernel $pkg $ver (one-time; cached in $kdir)"
    dl=$cache/download
    mkdir -p "$dl"
    deb=$(compgen -G "$dl/${pkg}_${ver//:/%3a}_*.deb" | head -1) || true
    if [[ -n $deb ]]; then
        log "reusing the downloaded $(basename "$deb")"
    else
        rm -f "$dl"/*.deb
    fi
    if [[ -z $deb ]] && ! (cd "$dl" && apt-get "${apt_download_opts[@]}" download -q "$pkg=$ver" >&2); then
        if [[ -z ${retried_update:-} ]]; then
            retried_update=1
            log "apt-get download failed; refreshing the package lists and retrying"
            if as_root apt-get update -q >&2; then
                prepare_kernel  # the candidate may have a new name or version now
                return 0
            fi
        fi
        if [[ -n $(newest_cached_kernel) ]]; then
            kdir=$(newest_cached_kernel)
            log "download failed; using the cached $(basename "$kdir")"
            return 0
        fi
        die "could not download $pkg"
    fi
    deb=$(compgen -G "$dl/*.deb" | head -1) || true
    [[ -n $deb ]] || die "apt-get download left no .deb in $dl"
    tmp=$(mktemp -d "$cache/unpack.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    dpkg-deb -x "$deb" "$tmp"
    kver=$(ls "$tmp/lib/modules" 2>/dev/null || ls "$tmp/usr/lib/modules")
    [[ $kver =~ ^[^[:space:]]+$ ]] || die "unexpected module tree in $deb"
    if [[ -d $tmp/lib/modules/$kver ]]; then mroot=$tmp/lib/modules/$kver; else
        mkdir -p "$tmp/lib/modules"; mv "$tmp/usr/lib/modules/$kver" "$tmp/lib/modules/"
        mroot=$tmp/lib/modules/$kver
    fi
    depmod -b "$tmp" "$kver"
    rm -rf "$kdir.new"
    mkdir -p "$kdir.new/modules"
    : >"$kdir.new/modules.order"
    cp "$tmp/boot/vmlinuz-$kver" "$kdir.new/vmlinuz"
    printf '%s\n' "$kver" >"$kdir.new/kver"
    resolve_modules "$mroot" >"$kdir.new/modules.wanted"
    # busybox insmod takes plain .ko files: decompress modules of kernels that compress them.
    local rel plain
    while read -r rel; do
        plain=${rel%.ko*}.ko
        mkdir -p "$kdir.new/modules/$(dirname "$rel")"
        case $rel in
            *.ko) cp "$mroot/$rel" "$kdir.new/modules/$plain" ;;
            *.ko.xz) xz -dc "$mroot/$rel" >"$kdir.new/modules/$plain" ;;
            *.ko.zst) zstd -qdc "$mroot/$rel" >"$kdir.new/modules/$plain" ;;
            *.ko.gz) gzip -dc "$mroot/$rel" >"$kdir.new/modules/$plain" ;;
            *) die "unexpected module file $rel" ;;
        esac
        printf '%s\n' "$plain" >>"$kdir.new/modules.order"
    done <"$kdir.new/modules.wanted"
    printf '%s\n' "${MODULES[*]}" >"$kdir.new/complete"
    rm -rf "$kdir"
    mv "$kdir.new" "$kdir"
    rm -rf "$tmp"   # the .deb stays in $dl, so a recipe change needs no new download
    trap - EXIT
    log "kernel $kver ready: $(tr '\n' ' ' <"$kdir/modules.order")"
}

# --- 3. base initramfs ---------------------------------------------------------------------
copy_with_libs() {  # src dest-root dest-path
    local src=$1 root=$2 dest=$3 lib
    mkdir -p "$root/$(dirname "$dest")"
    cp -L "$src" "$root/$dest"
    chmod a+rx "$root/$dest"
    while read -r lib; do
        [[ -e $root/$lib ]] && continue
        mkdir -p "$root/$(dirname "$lib")"
        cp -L "$lib" "$root/$lib"
    done < <(ldd "$src" 2>/dev/null | awk '/=> \// {print $3} /^[[:space:]]*\/[^ ]+ \(/ {print $1}')
}

write_init() {
    cat >"$1" <<'EOF'
#!/bin/sh
# /init of the tcpcan SocketCAN test VM (generated by tests/socketcan/vm.sh)
export PATH=/opt/tcpcan-test:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C LC_ALL=C
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /run /var
mount -t tmpfs -o mode=755 tmpfs /run
ln -sfn /run /var/run
nonce=$(cat /etc/tcpcan-vm/nonce 2>/dev/null)
finish() {
    echo "TCPCAN-VM-RESULT $1 $nonce"
    sync
    poweroff -f
    sleep 5
}
kver=$(uname -r)
while read -r m; do
    insmod "/lib/modules/$kver/$m" || { echo "TCPCAN-VM: insmod $m failed"; finish 99; }
done </etc/tcpcan-vm/modules
ip link set dev lo up || { echo "TCPCAN-VM: cannot raise lo"; finish 99; }
# vcan loops frames back through the per-CPU receive backlog (default 1000 packets); a flood
# under slow emulation must not overflow it, or frames vanish before any socket sees them.
echo 100000 >/proc/sys/net/core/netdev_max_backlog
for i in 0 1 2; do
    ip link add dev vcan$i type vcan && ip link set dev vcan$i up ||
        { echo "TCPCAN-VM: cannot create vcan$i"; finish 99; }
done
echo "TCPCAN-VM: up after $(cut -d' ' -f1 /proc/uptime) s (kernel $kver, $(nproc) CPUs); running the command"
cd /tmp
/bin/bash /opt/tcpcan-test/.run </dev/null
finish $?
EOF
    chmod 755 "$1"
}

prepare_base() {
    local sums key root tool bin applet rel kver
    kver=$(cat "$kdir/kver")
    local tools=(/bin/busybox /bin/bash)
    for tool in "${CAN_TOOLS[@]}" "${NET_TOOLS[@]}" "${SCHED_TOOLS[@]}"; do
        bin=$(PATH=$PATH:/usr/sbin:/sbin command -v "$tool") || die "$tool not found (packages can-utils, iproute2, util-linux, coreutils)"
        tools+=("$bin")
    done
    sums=$( { printf 'recipe %s\n' "$RECIPE"; declare -f write_init copy_with_libs; md5sum "${tools[@]}"; } | md5sum)
    key=${sums%% *}
    base=$kdir/base-${key:0:12}.cpio.gz
    [[ -f $base ]] && return 0

    log "building the base initramfs $base"
    root=$(mktemp -d "$cache/base.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" EXIT
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,root,etc/tcpcan-vm,$VM_DIR}
    cp /bin/busybox "$root/bin/busybox"
    while read -r applet; do
        [[ -z $applet || $applet == busybox ]] && continue
        [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
    done < <(/bin/busybox --list)
    copy_with_libs /bin/bash "$root" bin/bash
    ln -s ../../bin/busybox "$root/usr/bin/env"   # for #!/usr/bin/env scripts
    for tool in "${CAN_TOOLS[@]}" "${SCHED_TOOLS[@]}"; do
        copy_with_libs "$(command -v "$tool")" "$root" "usr/bin/$tool"
    done
    for tool in "${NET_TOOLS[@]}"; do
        copy_with_libs "$(PATH=$PATH:/usr/sbin:/sbin command -v "$tool")" "$root" "usr/sbin/$tool"
    done
    while read -r rel; do
        mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
        cp "$kdir/modules/$rel" "$root/lib/modules/$kver/$rel"
    done <"$kdir/modules.order"
    cp "$kdir/modules.order" "$root/etc/tcpcan-vm/modules"
    echo 'root:x:0:0:root:/root:/bin/bash' >"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
    write_init "$root/init"
    # Device nodes need root for mknod; a fakeroot-free way: let cpio create them from a
    # listing only when we are root, else rely on devtmpfs (the kernel opens /dev/console
    # before /init runs, so it must exist in the archive).
    (
        cd "$root"
        {
            find . -mindepth 1 | LC_ALL=C sort
        } | cpio -o -H newc -R 0:0 --quiet >"$root.cpio"
    )
    append_dev_nodes "$root.cpio"
    gzip -9 -n <"$root.cpio" >"$base.new"
    rm -f "$root.cpio"
    rm -f "$kdir"/base-*.cpio.gz   # older recipes or tool versions
    mv "$base.new" "$base"
    rm -rf "$root"
    trap - EXIT
}

# Appends /dev/console and /dev/null (character devices) to an uncompressed newc archive
# without needing mknod privileges: newc members are plain text headers, so we write them.
append_dev_nodes() {
    newc_entry() {  # name mode major minor
        local name=$1 mode=$2 maj=$3 min=$4 namesize hdr pad
        namesize=$((${#name} + 1))
        hdr=$(printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
            $((RANDOM + 100000)) "$mode" 0 0 1 0 0 0 0 "$maj" "$min" "$namesize" 0)
        printf '%s%s\0' "$hdr" "$name"
        pad=$(((4 - (110 + namesize) % 4) % 4))
        head -c "$pad" /dev/zero
    }
    # Strip the trailer, add the nodes, add a new trailer.
    local f=$1 trailer_at
    trailer_at=$(grep -abo 'TRAILER!!!' "$f" | tail -1 | cut -d: -f1)
    [[ -n $trailer_at ]] || die "no cpio trailer in $f"
    truncate -s $((trailer_at - 110)) "$f"
    {
        newc_entry dev/console $((8#020600)) 5 1
        newc_entry dev/null $((8#020666)) 1 3
        newc_entry TRAILER!!! 0 0 0
    } >>"$f"
    local size
    size=$(stat -c %s "$f")
    head -c $(((512 - size % 512) % 512)) /dev/zero >>"$f"
}

# --- 4. per-run archive --------------------------------------------------------------------
build_run_archive() {  # workdir nonce -> $work/run.cpio.gz
    local work=$1 nonce=$2 root=$1/root spec src name e arg
    mkdir -p "$root/etc/tcpcan-vm" "$root$VM_DIR"
    printf '%s\n' "$nonce" >"$root/etc/tcpcan-vm/nonce"
    for spec in "${adds[@]}"; do
        src=${spec%%=*}
        name=${spec#*=}
        [[ $spec == *=* ]] || name=$(basename "$src")
        [[ -f $src ]] || die "--add: $src is not a file"
        [[ $name != */* && -n $name ]] || die "--add: bad name '$name'"
        copy_with_libs "$src" "$root" "${VM_DIR#/}/$name"
    done
    {
        echo '# generated by vm.sh'
        for e in "${envs[@]}"; do printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"; done
        printf 'exec'
        for arg in "${cmd[@]}"; do printf ' %q' "$arg"; done
        printf '\n'
    } >"$root$VM_DIR/.run"
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 -n) >"$work/run.cpio.gz"
}

# --- 5. boot ---------------------------------------------------------------------------------
choose_accel() {
    local want=${TCPCAN_VM_ACCEL:-}
    if [[ -z $want ]]; then
        if [[ -d /sys/module/kvm_pvm ]]; then want=tcg
        elif [[ -r /dev/kvm && -w /dev/kvm ]]; then want=kvm
        else want=tcg
        fi
    fi
    case $want in
        kvm) accel=(-accel kvm -cpu host) ;;
        tcg) accel=(-accel tcg -cpu max) ;;
        *) die "TCPCAN_VM_ACCEL must be kvm or tcg" ;;
    esac
    local icount=${TCPCAN_VM_ICOUNT:-}
    if [[ -n $icount ]]; then
        [[ $icount =~ ^[0-9]$ ]] || die "TCPCAN_VM_ICOUNT must be a shift from 0 to 9"
        [[ $want == tcg ]] || die "TCPCAN_VM_ICOUNT needs TCPCAN_VM_ACCEL=tcg"
        # icount needs the single-threaded TCG: the vCPUs take turns on one host thread.
        # sleep=on would let idle time pass in real time: latency tails then follow the host.
        accel=(-accel tcg,thread=single -cpu max -icount "shift=$icount,sleep=off")
    fi
}

main() {
    cmd=("$@")
    ensure_packages
    exec 9>"$cache/.lock"
    flock -w 900 9 || die "timed out waiting for the cache lock $cache/.lock"
    prepare_kernel
    prepare_base
    flock -u 9
    if ((prepare_only)); then
        log "ready: kernel $(cat "$kdir/kver"), base $base"
        return 0
    fi

    local work nonce rc status t0 t1 bios=()
    work=$(mktemp -d "${TMPDIR:-/tmp}/tcpcan-vm.XXXXXX")
    if [[ ${TCPCAN_VM_KEEP:-0} == 1 ]]; then log "keeping $work"
    else
        # shellcheck disable=SC2064
        trap "rm -rf '$work'" EXIT
    fi
    nonce=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
    build_run_archive "$work" "$nonce"
    cat "$base" "$work/run.cpio.gz" >"$work/initrd.cpio.gz"
    choose_accel
    [[ -f /usr/share/qemu/qboot.rom ]] && bios=(-bios /usr/share/qemu/qboot.rom)

    log "booting ($(cat "$kdir/kver"), ${accel[*]}, timeout ${timeout_s}s)"
    t0=$(date +%s.%N)
    set +e
    timeout -k 5 "$timeout_s" qemu-system-x86_64 "${accel[@]}" \
        -m "${TCPCAN_VM_MEM:-1024}" -smp "${TCPCAN_VM_SMP:-2}" \
        -display none -nodefaults -no-user-config -monitor none -serial stdio -no-reboot \
        "${bios[@]}" -kernel "$kdir/vmlinuz" -initrd "$work/initrd.cpio.gz" \
        -append "console=ttyS0 quiet panic=-1 oops=panic${kernel_args:+ $kernel_args}" </dev/null 2>&1 |
        sed -u 's/\r$//' | tee "$work/console.log"
    rc=${PIPESTATUS[0]}
    set -e
    t1=$(date +%s.%N)
    status=$(sed -n "s/^TCPCAN-VM-RESULT \([0-9][0-9]*\) $nonce\$/\1/p" "$work/console.log" | tail -1)
    cp "$work/console.log" "$cache/last-console.log" 2>/dev/null || true
    if [[ -z $status ]]; then
        local why="the VM ended without a result marker (kernel panic, crash or hang?); qemu exit status $rc"
        ((rc == 124 || rc == 137)) && why="the VM timed out after ${timeout_s}s (hang?)"
        log "FAILURE: $why"
        log "last 40 lines of the console (full log: $cache/last-console.log):"
        tail -n 40 "$work/console.log" | sed 's/^/    | /' >&2
        return "$EXIT_VM"
    fi
    log "VM finished in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s, command exit status $status"
    return "$status"
}

main "$@"

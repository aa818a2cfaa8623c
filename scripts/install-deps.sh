#!/usr/bin/env bash
# Installs, from Debian's or Ubuntu's archive, what this project needs and the machine
# lacks. `--demo`: only what building and running the bridge needs. Default: everything
# the tests use (cross compiler, qemu, clang for fuzzing, can-utils for the VM tests).
set -euo pipefail

build=(meson ninja-build g++ pkg-config libcli11-dev libnl-route-3-dev libssl-dev libsystemd-dev python3)
tests=(doctest-dev clang libclang-rt-14-dev
       gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
       qemu-system-x86 busybox-static kmod cpio can-utils libbenchmark-dev openssl
       scdoc systemd tshark wireshark-common python3-can iproute2 ccache build-essential dpkg-dev debhelper fakeroot lintian)

wanted=("${build[@]}")
[ "${1:-}" = "--demo" ] || wanted+=("${tests[@]}")

missing=()
for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

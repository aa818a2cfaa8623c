#!/usr/bin/env python3
"""Builds qemu/loopback.cpp for emulated Cortex-M boards and runs it under qemu-system-arm.

For each board the image is compiled with arm-none-eabi-g++ (startup.cpp's vector table
at address 0, qemu/mps2.ld or qemu/microbit.ld, newlib-nano with rdimon semihosting) and run as

    timeout 120 qemu-system-arm -M BOARD -display none -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel loopback-BOARD.elf

The program's exit status becomes qemu's (semihosting), so 0 is a pass; a fault exits 99.

Exit status: 0 pass, 1 fail, 77 skip (no toolchain, no newlib, or no qemu-system-arm).
"""

import argparse
import os
import shutil
import subprocess
import sys

from check_cortex_m import missing_cxx_library  # same folder: the script's own path is on sys.path

# board, core, linker script, extra defines. The mps2 boards have 4 MiB at 0x0 and at
# 0x20000000; the micro:bit (nRF51, a Cortex-M0 that faults on unaligned access) has
# 256 KiB of flash and 16 KiB of RAM, so loopback.cpp uses smaller sessions there.
BOARDS = [
    ("microbit", "cortex-m0", "microbit.ld", ["-DTCPCAN_SMALL_RAM"]),
    ("mps2-an385", "cortex-m3", "mps2.ld", []),
    ("mps2-an386", "cortex-m4", "mps2.ld", []),
    ("mps2-an500", "cortex-m7", "mps2.ld", []),
]

CXXFLAGS = [
    "-std=c++20",
    "-mthumb",
    "-Os",
    "-fno-exceptions",
    "-fno-rtti",
    "-ffunction-sections",
    "-fdata-sections",
    "-Wall",
    "-Wextra",
    "-Werror",
]

WRAPPED = ["malloc", "calloc", "realloc", "free", "_malloc_r", "_calloc_r", "_realloc_r", "_free_r"]


def run(cmd, timeout=None):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return subprocess.CompletedProcess(cmd, 124, out + f"\n(killed after {timeout} s)\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cxx", default="", help="arm-none-eabi-g++ (empty: look on PATH)")
    parser.add_argument("--qemu", default="", help="qemu-system-arm (empty: look on PATH)")
    parser.add_argument("--source-dir", required=True, help="tests/core/qemu")
    parser.add_argument("--include", required=True)
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--timeout", type=int, default=120, help="seconds per board")
    parser.add_argument("--boards", nargs="*", default=[b[0] for b in BOARDS])
    args = parser.parse_args()

    cxx = args.cxx or shutil.which("arm-none-eabi-g++")
    qemu = args.qemu or shutil.which("qemu-system-arm")
    if not cxx:
        print("SKIP: arm-none-eabi-g++ not found (install gcc-arm-none-eabi, libnewlib-arm-none-eabi, "
              "libstdc++-arm-none-eabi-newlib)")
        return 77
    if not qemu:
        print("SKIP: qemu-system-arm not found (install qemu-system-arm)")
        return 77
    size = os.path.join(os.path.dirname(cxx), os.path.basename(cxx)[: -len("g++")] + "size")
    os.makedirs(args.outdir, exist_ok=True)
    if missing_cxx_library(cxx, args.outdir):
        print(f"SKIP: {cxx} has no C++ standard headers (install libstdc++-arm-none-eabi-newlib)")
        return 77
    timeout_cmd = shutil.which("timeout")

    failed = False
    for board, cpu, script, defines in BOARDS:
        if board not in args.boards:
            continue
        elf = os.path.join(args.outdir, f"loopback-{board}.elf")
        cmd = [
            cxx, f"-mcpu={cpu}", *CXXFLAGS,
            f'-DTCPCAN_TARGET_NAME="{cpu} ({board})"', *defines,
            "-I", args.include,
            "--specs=nano.specs", "--specs=rdimon.specs",
            "-L", args.source_dir, "-T", script,
            "-Wl,--gc-sections",
            *[f"-Wl,--wrap={name}" for name in WRAPPED],
            os.path.join(args.source_dir, "startup.cpp"),
            os.path.join(args.source_dir, "loopback.cpp"),
            "-o", elf,
        ]
        built = run(cmd)
        if built.returncode != 0:
            if "rdimon" in built.stdout and ("cannot find" in built.stdout or "No such file" in built.stdout):
                print(f"SKIP: newlib's rdimon is missing (install libnewlib-arm-none-eabi):\n{built.stdout}")
                return 77
            print(f"FAIL {board}: build failed:\n  {' '.join(cmd)}\n{built.stdout}")
            failed = True
            continue
        if os.path.exists(size):
            print(run([size, elf]).stdout.rstrip())
        qemu_cmd = [
            qemu, "-M", board, "-display", "none", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-kernel", elf,
        ]
        if timeout_cmd:
            qemu_cmd = [timeout_cmd, "--kill-after=5", str(args.timeout), *qemu_cmd]
        result = run(qemu_cmd, timeout=args.timeout + 10)
        print(f"$ {' '.join(qemu_cmd)}")
        print(result.stdout.rstrip())
        if result.returncode == 0:
            print(f"ok   {board} ({cpu})\n")
        else:
            reason = {124: "timed out", 99: "fault"}.get(result.returncode, "")
            print(f"FAIL {board} ({cpu}): exit status {result.returncode} {reason}\n")
            failed = True
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Compiles the core for Cortex-M cores with arm-none-eabi-g++ and checks what it needs.

For each core (M0+, M3, M4, M7):
  1. cortex_m_instantiation.cpp, which instantiates the real templates behind extern "C"
     entry points, is compiled to an object with -ffreestanding -fno-exceptions -fno-rtti
     -Wall -Wextra -Werror at -Os.
  2. `arm-none-eabi-nm -u` on the object must list only symbols on the allow-list below:
     a heap call (_Znwj, malloc, ...), __cxa_*, __throw_*, unwinding or I/O fails the test
     and says what the symbol means.
  3. The object must have no static constructors (.init_array / .ctors).
  4. `arm-none-eabi-size` gives the flash (text + data) and RAM (data + bss) cost.
The same object is then built with clang++ (when installed) for each core, using the
toolchain's libstdc++ and newlib headers, and checked the same way. Last, every public
header is compiled alone for Cortex-M4 (-fsyntax-only), which catches a header that leans
on something the host's hosted library happens to include.

Exit status: 0 pass, 1 fail, 77 skip (no arm-none-eabi toolchain), as meson expects.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

CORES = ["cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7"]

FLAGS = [
    "-std=c++20",
    "-mthumb",
    "-Os",
    "-ffreestanding",
    "-fno-exceptions",
    "-fno-rtti",
    "-Wall",
    "-Wextra",
    "-Werror",
]

# Checked first: these explain why a symbol is not acceptable.
DENIED = [
    (r"_Zn[wa][jm].*", "operator new (heap allocation)"),
    (r"_Zd[la]Pv.*", "operator delete (heap)"),
    (r"_?(malloc|calloc|realloc|free|memalign|aligned_alloc|posix_memalign)(_r)?", "C heap allocation"),
    (r"_?sbrk(_r)?", "heap growth (sbrk)"),
    (r"__cxa_guard_(acquire|release|abort)", "thread-safe static local initialisation (needs a C++ runtime)"),
    (r"__cxa_(atexit|finalize)|__aeabi_atexit|atexit", "static destructor registration"),
    (r"__cxa_pure_virtual", "pure virtual call handler (C++ runtime)"),
    (r"__cxa_.*", "C++ runtime / exception support (__cxa_*)"),
    (r"__gxx_personality.*|__aeabi_unwind_cpp_pr\d|_Unwind_.*", "exception unwinding"),
    (r"_ZSt\d+__throw_.*|__throw_.*", "a throwing standard-library path (e.g. string_view::substr, array::at)"),
    (r"_ZTI.*|_ZTS.*|__dynamic_cast", "RTTI (typeinfo / dynamic_cast)"),
    (r"__assert_func|__assert_fail|__assert", "assert() (needs the C library's printing assert handler)"),
    (r"(printf|fprintf|sprintf|snprintf|vprintf|puts|putchar|fputs|fwrite|fopen|write|_write|_write_r)",
     "I/O"),
    (r"abort|exit|_exit", "program termination (the core should report, not end the program)"),
]

# Everything the core may need from the toolchain's runtime.
ALLOWED = [
    # GCC requires even a freestanding environment to provide these (GCC manual, "C Language").
    r"memcpy", r"memset", r"memmove", r"memcmp",
    # Not required by GCC, but in every embedded libc and heap-free. Today it comes from
    # Session::protocol_failure, which turns describe(ProtocolError) (a const char*) into the
    # std::string_view that close() takes.
    r"strlen",
    # ARM run-time ABI helpers: integer division, 64-bit shifts and multiply, memcpy/memset
    # variants (__aeabi_memcpy4, __aeabi_memclr, ...).
    r"__aeabi_(u?idiv|u?idivmod|u?ldivmod|lmul|llsl|llsr|lasr|lcmp|ulcmp)",
    r"__aeabi_mem(cpy|cpy4|cpy8|move|move4|move8|set|set4|set8|clr|clr4|clr8)",
    # ARMv6-M (M0/M0+) switch-table dispatchers.
    r"__gnu_thumb1_case_(sqi|uqi|shi|uhi|si)",
    # libgcc integer helpers that some cores need.
    r"__(u?div|u?mod)[sd]i3", r"__(clz|ctz|popcount|parity|ffs)[sd]i2", r"__bswap[sd]i2",
    r"__(ashl|ashr|lshr|mul)di3", r"__u?cmpdi2",
]


def fullmatch_any(name, patterns):
    for entry in patterns:
        pattern = entry[0] if isinstance(entry, tuple) else entry
        if re.fullmatch(pattern, name):
            return entry
    return None


def tool(cxx, name):
    """arm-none-eabi-nm next to arm-none-eabi-g++ (same prefix and directory)."""
    base = os.path.basename(cxx)
    candidate = os.path.join(os.path.dirname(cxx), base[: -len("g++")] + name) if base.endswith("g++") else ""
    if candidate and os.path.exists(candidate):
        return candidate
    return shutil.which("arm-none-eabi-" + name)


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)


# clang has no arm-none-eabi C++ library of its own: it borrows GCC's libstdc++ and newlib
# headers (not GCC's compiler headers: clang brings its own stddef.h, stdint.h, ...).
CLANG_TARGETS = {
    "cortex-m0plus": "thumbv6m-none-eabi",
    "cortex-m3": "thumbv7m-none-eabi",
    "cortex-m4": "thumbv7em-none-eabi",
    "cortex-m7": "thumbv7em-none-eabi",
}


def clang_command(clang, gxx, cpu):
    """clang++ for `cpu` with the library headers arm-none-eabi-g++ uses for that core."""
    r = run([gxx, f"-mcpu={cpu}", "-mthumb", "-std=c++20", "-E", "-v", "-x", "c++", os.devnull])
    lines = r.stdout.splitlines()
    try:
        start = lines.index("#include <...> search starts here:") + 1
        end = lines.index("End of search list.")
    except ValueError:
        return None
    dirs = [os.path.normpath(d.strip()) for d in lines[start:end]]
    dirs = [d for d in dirs if not re.search(r"/lib/gcc/[^/]+/[^/]+/include(-fixed)?$", d)]
    return [clang, f"--target={CLANG_TARGETS[cpu]}", f"-mcpu={cpu}", "-nostdinc++", "-nostdlibinc",
            *[arg for d in dirs for arg in ("-isystem", d)]]


def check_core(compiler, label, nm, size, readelf, source, include, outdir, cpu):
    """Returns (problems, sizes) for one core; `compiler` is the command before the flags."""
    obj = os.path.join(outdir, f"tcpcan-core-{label}.o")
    cmd = [*compiler, f"-mcpu={cpu}", *FLAGS, "-I", include, "-c", source, "-o", obj]
    r = run(cmd)
    if r.returncode != 0:
        return [f"compile failed:\n  {' '.join(cmd)}\n{r.stdout}"], None
    if r.stdout.strip():
        print(r.stdout)

    problems = []
    undefined = run([nm, "-u", obj])
    names = sorted({line.split()[-1] for line in undefined.stdout.splitlines() if line.strip()})
    for name in names:
        denied = fullmatch_any(name, DENIED)
        if denied:
            problems.append(f"undefined symbol {name}: {denied[1]}")
        elif not fullmatch_any(name, ALLOWED):
            problems.append(f"undefined symbol {name}: not on the allow-list in {os.path.basename(__file__)}")
    print(f"  nm -u: {' '.join(names) if names else '(nothing)'}")

    sections = run([readelf, "-SW", obj]).stdout
    for ctor in (".init_array", ".ctors", ".preinit_array"):
        if re.search(r"\s" + re.escape(ctor) + r"(\.\S*)?\s", sections):
            problems.append(f"object has a {ctor} section: a static constructor runs before main")

    berkeley = run([size, obj]).stdout.splitlines()
    text, data, bss = (int(v) for v in berkeley[1].split()[:3])
    rodata = 0  # part of text: describe() strings, tables
    for line in run([size, "-A", obj]).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".rodata") and parts[1].isdigit():
            rodata += int(parts[1])
    # The session object's own size: g_session is a std::optional<Session<...>>, whose
    # engaged flag is padded to the session's 8-byte alignment.
    session = None
    for line in run([nm, "-S", "-C", obj]).stdout.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[3].endswith("g_session"):
            session = int(parts[1], 16) - 8
    return problems, {"text": text, "rodata": rodata, "data": data, "bss": bss, "session": session, "object": obj}


def check_headers_alone(cxx, include, cpu):
    problems = []
    headers = []
    for root, _dirs, files in os.walk(include):
        for f in files:
            if f.endswith(".hpp"):
                headers.append(os.path.relpath(os.path.join(root, f), include))
    with tempfile.TemporaryDirectory() as tmp:
        for header in sorted(headers):
            tu = os.path.join(tmp, "alone.cpp")
            with open(tu, "w", encoding="utf-8") as f:
                f.write(f"#include <{header}>\n#include <{header}>\n")
            r = run([cxx, f"-mcpu={cpu}", *FLAGS, "-I", include, "-fsyntax-only", tu])
            if r.returncode != 0:
                problems.append(f"{header} does not compile alone for {cpu}:\n{r.stdout}")
    return problems, len(headers)


def missing_cxx_library(cxx, outdir):
    """The compiler is there but its C++ headers are not (libstdc++-arm-none-eabi-newlib)."""
    probe = os.path.join(outdir, "probe-span.cpp")
    with open(probe, "w", encoding="utf-8") as f:
        f.write("#include <span>\n#include <cstdint>\n")
    r = run([cxx, "-mcpu=cortex-m4", "-mthumb", "-std=c++20", "-ffreestanding", "-fsyntax-only", probe])
    return r.returncode != 0 and "No such file" in r.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cxx", default="", help="arm-none-eabi-g++ (empty: skip the test)")
    parser.add_argument("--source", required=True)
    parser.add_argument("--include", required=True)
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--clang", default="", help="clang++ for a second build (empty: look on PATH)")
    parser.add_argument("--cores", nargs="*", default=CORES)
    args = parser.parse_args()

    cxx = args.cxx or shutil.which("arm-none-eabi-g++")
    if not cxx:
        print("SKIP: arm-none-eabi-g++ not found (install gcc-arm-none-eabi and libstdc++-arm-none-eabi-newlib)")
        return 77
    nm, size, readelf = tool(cxx, "nm"), tool(cxx, "size"), tool(cxx, "readelf")
    if not (nm and size and readelf):
        print("SKIP: arm-none-eabi-nm, -size or -readelf not found next to", cxx)
        return 77
    os.makedirs(args.outdir, exist_ok=True)
    if missing_cxx_library(cxx, args.outdir):
        print(f"SKIP: {cxx} has no C++ standard headers (install libstdc++-arm-none-eabi-newlib)")
        return 77
    print(run([cxx, "--version"]).stdout.splitlines()[0])

    failed = False
    table = []
    for cpu in args.cores:
        print(f"{cpu}:")
        problems, sizes = check_core([cxx], cpu, nm, size, readelf, args.source, args.include, args.outdir, cpu)
        for p in problems:
            print(f"  FAIL {cpu}: {p}")
        failed = failed or bool(problems)
        if sizes:
            table.append((cpu, sizes))

    # The same object built by clang, when there is one: the core must compile with both.
    clang = args.clang or shutil.which("clang++")
    if clang:
        print(run([clang, "--version"]).stdout.splitlines()[0])
        for cpu in args.cores:
            compiler = clang_command(clang, cxx, cpu)
            label = f"{cpu}-clang"
            print(f"{label}:")
            if compiler is None:
                print(f"  FAIL {label}: could not read arm-none-eabi-g++'s include path")
                failed = True
                continue
            problems, sizes = check_core(compiler, label, nm, size, readelf, args.source, args.include,
                                         args.outdir, cpu)
            for p in problems:
                print(f"  FAIL {label}: {p}")
            failed = failed or bool(problems)
            if sizes:
                table.append((label, sizes))
    else:
        print("clang++ not found: the clang build of the core was not checked")

    problems, count = check_headers_alone(cxx, args.include, "cortex-m4")
    for p in problems:
        print(f"FAIL: {p}")
    failed = failed or bool(problems)
    print(f"{count} headers compiled alone for cortex-m4: {'FAIL' if problems else 'ok'}")

    print()
    print("Object size (the instantiation TU: Session<2048,16,32,8> and a GatewayProfile session, decoder, encoders, filters,")
    print("candump text, bridge_step; thin extern \"C\" wrappers and test globals included).")
    print("text includes rodata; flash = text + data, RAM = data + bss.")
    print(f"{'core':<20}{'text':>7}{'rodata':>8}{'data':>7}{'bss':>7}{'flash':>8}{'RAM':>7}{'sizeof(Session)':>17}")
    for cpu, s in table:
        session = s["session"] or 0
        print(f"{cpu:<20}{s['text']:>7}{s['rodata']:>8}{s['data']:>7}{s['bss']:>7}{s['text'] + s['data']:>8}"
              f"{s['data'] + s['bss']:>7}{session:>17}")
    if table:
        print()
        print("Largest objects in RAM (cortex-m4):")
        obj = next((s["object"] for cpu, s in table if cpu == "cortex-m4"), table[0][1]["object"])
        for line in run([nm, "-S", "-C", "--size-sort", "-r", obj]).stdout.splitlines():
            parts = line.split(maxsplit=3)
            if len(parts) == 4 and parts[2] in "bBdD":
                section = ".bss" if parts[2] in "bB" else ".data"
                print(f"  {int(parts[1], 16):>6}  {section:<6} {parts[3]}")
    print()
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

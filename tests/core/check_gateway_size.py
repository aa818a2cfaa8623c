#!/usr/bin/env python3
"""Builds the reference gateway (port/cortex-m) and enforces its size targets (issue 12).

For Cortex-M0+ (the BBC micro:bit image) and, for information, Cortex-M4 (mps2-an386),
with arm-none-eabi-g++ -Os, -ffunction-sections -fdata-sections, --gc-sections,
newlib-nano, no start files:

  flash            .text + .data of the linked image            <= 8192 B   (M0+)
  sizeof(Session)  the gateway's Session<384,16,28,4,GatewayProfile>  <= 2048 B   (M0+)
  RAM              .data + .bss + worst-case stack               <= 3072 B   (M0+)

The worst-case stack is computed, not guessed: GCC's -fcallgraph-info=su gives every
function's own frame and its calls; the deepest path from Reset_Handler, plus the deepest
interrupt handler and the 8-word exception frame, is the figure. Library functions the
compiler did not see (memcpy, __aeabi_lmul, ...) are measured from their disassembly
(push / sub sp). Recursion, dynamic frames or an unresolved indirect call fail the test.
The image must also hold no heap, exception, unwinding or C++ runtime symbol (the deny
list of check_cortex_m.py, applied to every symbol of the ELF).

Exit status: 0 pass, 1 fail, 77 skip (no arm-none-eabi toolchain or C++ headers).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

from check_cortex_m import DENIED, fullmatch_any, missing_cxx_library

LIMITS = {"flash": 8192, "session": 2048, "ram": 3072}

# name, core, -D board macro, linker script, enforce the limits
TARGETS = [
    ("microbit", "cortex-m0plus", "GATEWAY_BOARD_MICROBIT", "microbit.ld", True),
    ("mps2-an386", "cortex-m4", "GATEWAY_BOARD_MPS2_AN386", "mps2-an386.ld", False),
]

CXXFLAGS = [
    "-std=c++20", "-mthumb", "-Os", "-ffreestanding", "-fno-exceptions", "-fno-rtti",
    "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra", "-Werror",
]
LDFLAGS = ["-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections"]

EXCEPTION_FRAME = 8 * 4 + 4  # r0-r3, r12, lr, pc, xPSR, plus alignment padding
INTERRUPT_HANDLERS = ["SysTick_Handler", "Fault_Handler"]


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)


def tool(cxx, name):
    base = os.path.basename(cxx)
    candidate = os.path.join(os.path.dirname(cxx), base[: -len("g++")] + name) if base.endswith("g++") else ""
    return candidate if candidate and os.path.exists(candidate) else shutil.which("arm-none-eabi-" + name)


def short(title):
    """'/path/file.cpp:_Z...' -> '_Z...'; external names stay as they are."""
    return title.rsplit(":", 1)[-1] if ".cpp:" in title else title


def parse_callgraph(paths):
    frames, calls, dynamic = {}, {}, []
    node_re = re.compile(r'^node: \{ title: "([^"]+)" label: "([^"]*)"')
    edge_re = re.compile(r'^edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = node_re.match(line)
                if m:
                    name = short(m.group(1))
                    su = re.search(r"(\d+) bytes \(([^)]*)\)", m.group(2))
                    if su:
                        frames[name] = int(su.group(1))
                        if "static" not in su.group(2):
                            dynamic.append(f"{name}: {su.group(2)} frame")
                    continue
                m = edge_re.match(line)
                if m:
                    calls.setdefault(short(m.group(1)), set()).add(short(m.group(2)))
    return frames, calls, dynamic


def library_frames(objdump, nm, elf):
    """Own frame and calls of every function in the image, from its disassembly. Aliases
    (__aeabi_uidivmod is __udivsi3's second name) get the figures of their address."""
    frames, calls, current = {}, {}, None
    by_address = {}
    for line in run([objdump, "-d", "--no-show-raw-insn", elf]).stdout.splitlines():
        m = re.match(r"^([0-9a-f]+) <([^>]+)>:$", line)
        if m:
            current = m.group(2)
            by_address[int(m.group(1), 16)] = current
            frames[current] = 0
            calls[current] = set()
            continue
        if current is None:
            continue
        m = re.search(r"\bpush(?:\.w)?\s+\{([^}]*)\}", line)
        if m:
            frames[current] += 4 * len([r for r in m.group(1).split(",") if r.strip()])
        m = re.search(r"\bsub(?:\.w)?\s+sp,\s*(?:sp,\s*)?#(\d+)", line)
        if m:
            frames[current] += int(m.group(1))
        m = re.search(r"\bbl\s+[0-9a-f]+ <([^>+]+)>", line)
        if m:
            calls[current].add(m.group(1))
    all_symbols = set()
    for line in run([nm, elf]).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            all_symbols.add(parts[2])
        if len(parts) == 3 and parts[2] not in frames:
            label = by_address.get(int(parts[0], 16) & ~1)
            if label is not None:
                frames[parts[2]] = frames[label]
                calls[parts[2]] = calls[label]
    return frames, calls, all_symbols


def demangle(name):
    cxxfilt = shutil.which("c++filt")
    if not cxxfilt or not name.startswith("_Z"):
        return name
    text = run([cxxfilt, name]).stdout.strip()
    # Template arguments make the log unreadable; keep the function's own name.
    return re.sub(r"<[^<>]*(<[^<>]*>[^<>]*)*>", "<>", text.split("(")[0])


def worst_stack(root, frames, calls, lib_frames, lib_calls, image_symbols, problems):
    memo, path = {}, []

    def visit(name):
        if name in memo:
            return memo[name]
        if name in path:
            problems.append("recursion: " + " -> ".join(path[path.index(name):] + [name]))
            return 0
        path.append(name)
        if name in frames:
            own, callees = frames[name], calls.get(name, set())
        elif name in lib_frames:
            own, callees = lib_frames[name], lib_calls.get(name, set())
        elif name not in image_symbols and name != "__indirect_call":
            own, callees = 0, set()  # a call the compiler planned but the image does not hold
        elif name == "__indirect_call":
            problems.append("an indirect call whose target the call graph does not know")
            own, callees = 0, set()
        else:
            problems.append(f"no stack figure for {name}")
            own, callees = 0, set()
        deepest, via = 0, None
        for callee in sorted(callees):
            depth = visit(callee)
            if depth > deepest:
                deepest, via = depth, callee
        path.pop()
        memo[name] = own + deepest
        chain[name] = (own, via)
        return memo[name]

    chain = {}
    total = visit(root)
    # The deepest path, for the log: "name (own bytes)" from the root down.
    steps, name = [], root
    while name is not None and name in chain:
        own, via = chain[name]
        steps.append(f"{demangle(name)} ({own})")
        name = via
    return total, steps


def build(cxx, args, board, cpu, macro, script):
    outdir = os.path.join(args.outdir, board)
    os.makedirs(outdir, exist_ok=True)
    common = [cxx, f"-mcpu={cpu}", *CXXFLAGS, f"-D{macro}", "-I", args.include, "-I", args.port_dir]
    objects, graphs = [], []
    for source in ("startup.cpp", "gateway.cpp"):
        obj = os.path.join(outdir, source.replace(".cpp", ".o"))
        r = run([*common, "-fstack-usage", "-fcallgraph-info=su", "-c", os.path.join(args.port_dir, source),
                 "-o", obj])
        if r.returncode != 0:
            return None, f"compile {source} failed:\n{r.stdout}"
        objects.append(obj)
        graphs.append(obj[:-2] + ".ci")
    elf = os.path.join(outdir, "gateway.elf")
    r = run([*common, *objects, *LDFLAGS, "-L", args.port_dir, "-T", script, "-o", elf])
    if r.returncode != 0:
        return None, f"link failed:\n{r.stdout}"
    probe = os.path.join(outdir, "session_size.o")
    r = run([*common, "-c", args.probe, "-o", probe])
    if r.returncode != 0:
        return None, f"compile {args.probe} failed:\n{r.stdout}"
    return {"elf": elf, "graphs": graphs, "probe": probe}, None


def measure(cxx, built):
    size, nm, objdump = tool(cxx, "size"), tool(cxx, "nm"), tool(cxx, "objdump")
    problems = []
    text, data, bss = (int(v) for v in run([size, built["elf"]]).stdout.splitlines()[1].split()[:3])
    session = None
    for line in run([nm, "-S", built["probe"]]).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == "gateway_session_size_probe":
            session = int(parts[1], 16)
    if session is None:
        problems.append("sizeof(Session) probe not found")
    frames, calls, dynamic = parse_callgraph(built["graphs"])
    problems += dynamic
    lib = library_frames(objdump, nm, built["elf"])
    main_stack, main_path = worst_stack("Reset_Handler", frames, calls, *lib, problems)
    isr_stack = max(worst_stack(h, frames, calls, *lib, problems)[0] for h in INTERRUPT_HANDLERS)
    stack = main_stack + isr_stack + EXCEPTION_FRAME
    for line in run([nm, built["elf"]]).stdout.splitlines():
        name = line.split()[-1]
        denied = fullmatch_any(name, DENIED)
        if denied:
            problems.append(f"symbol {name} in the image: {denied[1]}")
    figures = {"flash": text + data, "text": text, "data": data, "bss": bss, "session": session or 0,
               "stack": stack, "main_stack": main_stack, "isr_stack": isr_stack, "main_path": main_path,
               "ram": data + bss + stack}
    return figures, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cxx", default="", help="arm-none-eabi-g++ (empty: look on PATH)")
    parser.add_argument("--port-dir", required=True, help="port/cortex-m")
    parser.add_argument("--probe", required=True, help="tests/core/gateway_session_size.cpp")
    parser.add_argument("--include", required=True)
    parser.add_argument("--outdir", required=True)
    args = parser.parse_args()

    cxx = args.cxx or shutil.which("arm-none-eabi-g++")
    if not cxx:
        print("SKIP: arm-none-eabi-g++ not found (install gcc-arm-none-eabi, libnewlib-arm-none-eabi, "
              "libstdc++-arm-none-eabi-newlib)")
        return 77
    os.makedirs(args.outdir, exist_ok=True)
    if missing_cxx_library(cxx, args.outdir):
        print(f"SKIP: {cxx} has no C++ standard headers (install libstdc++-arm-none-eabi-newlib)")
        return 77

    failed = False
    for board, cpu, macro, script, enforced in TARGETS:
        built, error = build(cxx, args, board, cpu, macro, script)
        if error:
            print(f"FAIL {cpu} ({board}): {error}")
            failed = True
            continue
        f, problems = measure(cxx, built)
        print(f"reference gateway, {cpu} ({board}), arm-none-eabi-g++ -Os, newlib-nano, --gc-sections:")
        print(f"  flash            {f['flash']:6} B  (.text {f['text']} + .data {f['data']})"
              + (f"   limit {LIMITS['flash']}" if enforced else ""))
        print(f"  .bss             {f['bss']:6} B")
        print(f"  sizeof(Session)  {f['session']:6} B  (Session<384,16,28,4,GatewayProfile>)"
              + (f"   limit {LIMITS['session']}" if enforced else ""))
        print(f"  worst stack      {f['stack']:6} B  (main path {f['main_stack']} + interrupt {f['isr_stack']}"
              f" + exception frame {EXCEPTION_FRAME})")
        print("  deepest path     " + " -> ".join(f["main_path"]))
        print(f"  RAM              {f['ram']:6} B  (.data + .bss + stack)"
              + (f"   limit {LIMITS['ram']}" if enforced else ""))
        if enforced:
            for key in ("flash", "session", "ram"):
                if f[key] > LIMITS[key]:
                    problems.append(f"{key} {f[key]} B exceeds the target of {LIMITS[key]} B")
        for p in problems:
            print(f"  FAIL {p}")
        failed = failed or bool(problems)
        print()
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

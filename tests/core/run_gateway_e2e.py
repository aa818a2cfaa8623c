#!/usr/bin/env python3
"""The reference gateway (port/cortex-m) running in qemu, end to end, on `microbit`
(Cortex-M0) and `mps2-an386` (Cortex-M4).

Each board runs the firmware with its UART exposed as a TCP server on 127.0.0.1 (a free
port picked here): `qemu-system-arm -M BOARD -serial tcp:127.0.0.1:PORT,server=on,wait=off`.
The firmware's CAN controller is in loopback mode, so a frame sent to the gateway crosses
it twice: peer -> session -> CAN bus -> session -> peer.

1. A raw peer, checked byte for byte: negotiation (`v 2`, `h`), classic frames and their
   echo with the gateway's own sequence numbers, an FD frame dropped by the classic-only
   profile (the next echo's sequence number shows nothing else was lost), ping -> pong,
   then silence: the gateway's pings (tokens 1, 2, ...) and its close with reason 3 (peer
   dead) and no text; a new session on the same line; a protocol error closed with
   reason 2 and no text.
2. The Linux tool: `tcpcan client --can - --host 127.0.0.1 --port PORT --heartbeat 0.5 -v`
   with candump lines on stdin; the same frames must come back on stdout, the client
   must measure round trips (the gateway answers its pings), and when the gateway stops
   (qemu paused with SIGSTOP) the client must declare it dead.
3. The stack the firmware really used: startup.cpp paints the free RAM below the stack;
   after the scenarios the test reads it through qemu's monitor (`xp`) and checks that the
   deepest word touched lies within the worst case check_gateway_size.py computes (the
   scenarios include the deepest path it reports, a protocol error's close).

No assertion is timed: every wait is bounded only so that a broken build fails instead
of hanging. Exit status: 0 pass, 1 fail, 77 skip (no arm-none-eabi toolchain, newlib or
qemu-system-arm).
"""

import argparse
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from check_cortex_m import missing_cxx_library
from check_gateway_size import EXCEPTION_FRAME, build, measure, tool

BOARDS = [
    ("microbit", "cortex-m0plus", "GATEWAY_BOARD_MICROBIT", "microbit.ld"),
    ("mps2-an386", "cortex-m4", "GATEWAY_BOARD_MPS2_AN386", "mps2-an386.ld"),
]

WAIT = 15.0  # seconds: the bound on any single expected event (heartbeats are 1 s, death 3 s)
STACK_PAINT = 0x5AC45AC4  # gateway_stack_paint in port/cortex-m/startup.cpp


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)
    print(f"  ok  {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Peer:
    """A raw protocol peer on a TCP socket, reading whole messages."""

    def __init__(self, port):
        deadline = time.monotonic() + WAIT
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Failure(f"could not connect to qemu's serial port {port}")
                time.sleep(0.1)
        self.sock.settimeout(WAIT)
        self.pings = 0  # heartbeat pings seen in the current session

    def send(self, hex_text):
        self.sock.sendall(bytes.fromhex(hex_text))

    def recv_exact(self, n):
        data = b""
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except socket.timeout:
                raise Failure(f"nothing from the gateway for {WAIT} s (had {data.hex(' ')})")
            if not chunk:
                raise Failure("the serial connection closed")
            data += chunk
        return data

    def message(self):
        header = self.recv_exact(2)
        return (header + self.recv_exact(header[1])).hex(" ")

    def message_between_pings(self):
        """The next message that is not one of the gateway's heartbeat pings. A slow machine
        may let a heartbeat fall between a request and its answer; the pings' tokens are
        still checked: 1, 2, 3, ... in order."""
        while True:
            got = self.message()
            if not got.startswith("70 04"):
                return got
            self.pings += 1
            check(got == f"70 04 00 00 00 {self.pings:02x}", f"gateway heartbeat ping {self.pings}: {got}")

    def close(self):
        self.sock.close()


def expect(peer, wanted, what):
    got = peer.message_between_pings()
    check(got == wanted, f"{what}: {got}" if got == wanted else f"{what}: expected {wanted}, got {got}")


def negotiate(peer):
    peer.pings = 0
    peer.send("76 04 00 00 00 02")
    expect(peer, "76 04 00 00 00 02", "version 2 acknowledged")
    expect(peer, "68 04 00 00 00 01", "features offered: SEQ")
    peer.send("68 04 00 00 00 01")


def raw_scenario(port):
    peer = Peer(port)
    negotiate(peer)
    # Classic standard, extended and remote frames, numbered 0, 1, 2.
    frames = [
        ("66 0d 40 00 00 01 23 03 {seq} 11 22 33", "standard 0x123"),
        ("66 12 41 1a bc de 0f 08 {seq} 01 02 03 04 05 06 07 08", "extended 0x1ABCDE0F"),
        ("66 0a 42 00 00 07 ff 04 {seq}", "remote 0x7FF"),
    ]
    for i, (f, _) in enumerate(frames):
        peer.send(f.format(seq=f"00 00 00 {i:02x}"))
    for i, (f, what) in enumerate(frames):
        expect(peer, f.format(seq=f"00 00 00 {i:02x}"), f"{what} echoed through the CAN loopback")
    # An FD frame (seq 3) is valid but not for a classic bus: dropped, never echoed. The
    # next frame (seq 4) comes back as the gateway's frame 3: nothing else went missing.
    peer.send("66 16 58 00 00 01 00 0c 00 00 00 03 00 01 02 03 04 05 06 07 08 09 0a 0b")
    peer.send("66 0b 40 00 00 01 01 01 00 00 00 04 aa")
    expect(peer, "66 0b 40 00 00 01 01 01 00 00 00 03 aa", "FD frame dropped, next frame echoed as number 3")
    peer.send("70 04 de ad be ef")
    expect(peer, "71 04 de ad be ef", "ping answered")
    # Silence: the gateway pings every second and gives up after 3 s without a byte.
    pings_before = peer.pings
    got = peer.message_between_pings()
    check(got == "63 01 03", f"close with reason 3 (peer dead), no text: {got}")
    # One ping a second, and death after 3 s (checked before the ping in the same pass):
    # at least one and at most three, whatever the machine's speed.
    check(1 <= peer.pings - pings_before <= 3, f"heartbeats during the silence: {peer.pings - pings_before}")
    # The gateway waits for the next peer on the same line.
    negotiate(peer)
    peer.send("66 0b 40 00 00 00 42 01 00 00 00 00 5a")
    expect(peer, "66 0b 40 00 00 00 42 01 00 00 00 00 5a", "new session: frame echoed, numbering from 0 again")
    peer.send("7a 00")
    expect(peer, "63 01 02", "unknown prefix: close with reason 2 (protocol error), no text")
    peer.close()


class Reader(threading.Thread):
    """Collects a pipe's lines into a queue."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines = queue.Queue()
        self.all = []
        self.start()

    def run(self):
        for line in iter(self.pipe.readline, ""):
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, predicate, what):
        deadline = time.monotonic() + WAIT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Failure(f"{what}: not seen in {WAIT} s; last lines:\n    " + "\n    ".join(self.all[-15:]))
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.all.append(line)
            if predicate(line):
                return line


def client_scenario(tcpcan, port, qemu):
    cmd = [tcpcan, "client", "--can", "-", "--host", "127.0.0.1", "--port", str(port),
           "--heartbeat", "0.5", "--dead-after", "2", "--no-retry", "-v"]
    print(f"  $ {' '.join(cmd)}")
    client = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              bufsize=1)
    out, err = Reader(client.stdout), Reader(client.stderr)
    try:
        err.wait_for(lambda l: "features agreed" in l, "client: session established")
        print("  ok  client: version 2 and features agreed with the gateway")
        lines = ["123#11223344", "1ABCDE0F#0102030405060708", "7FF#R", "000#", "321#DEADBEEFCAFEF00D"]
        for line in lines:
            client.stdin.write(line + "\n")
        client.stdin.flush()
        for line in lines:
            got = out.wait_for(lambda l: True, f"frame {line} back from the gateway")
            check(got.split()[-1] == line, f"client -> gateway -> CAN loopback -> gateway -> client: {got}")
        err.wait_for(lambda l: "round trip" in l, "client: a round trip measured (the gateway answered a ping)")
        print("  ok  client: the gateway answers the client's heartbeat")
        os.kill(qemu.pid, signal.SIGSTOP)
        try:
            line = err.wait_for(lambda l: "dead peer" in l, "client: the paused gateway declared dead")
            print(f"  ok  client: {line.split(': ', 1)[-1]}")
        finally:
            os.kill(qemu.pid, signal.SIGCONT)
    finally:
        if client.poll() is None:
            client.send_signal(signal.SIGTERM)
        try:
            client.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()


class Monitor:
    """qemu's human monitor on a Unix socket: commands in, text out up to the next prompt."""

    def __init__(self, path):
        deadline = time.monotonic() + WAIT
        self.sock = socket.socket(socket.AF_UNIX)
        while True:
            try:
                self.sock.connect(path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Failure(f"qemu's monitor socket {path} did not open")
                time.sleep(0.1)
        self.sock.settimeout(WAIT)
        self.read_to_prompt()

    def read_to_prompt(self):
        data = b""
        while not data.rstrip().endswith(b"(qemu)"):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failure("qemu's monitor closed")
            data += chunk
        return data.decode(errors="replace")

    def command(self, text):
        self.sock.sendall(text.encode() + b"\n")
        return self.read_to_prompt()

    def words(self, address, count):
        """`count` 32-bit words of guest physical memory from `address`."""
        values = {}
        for line in self.command(f"xp /{count}xw {address:#x}").splitlines():
            m = re.match(r"^\s*([0-9a-f]+):((?:\s+0x[0-9a-f]+)+)\s*$", line.strip("\r\x1b[K"))
            if m:
                base = int(m.group(1), 16)
                for i, word in enumerate(m.group(2).split()):
                    values[base + 4 * i] = int(word, 16)
        return [values.get(address + 4 * i) for i in range(count)]

    def close(self):
        self.sock.close()


def symbol_address(cxx, elf, name):
    for line in subprocess.run([tool(cxx, "nm"), elf], stdout=subprocess.PIPE, text=True, check=False).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise Failure(f"{name} not in {elf}")


def stack_check(cxx, built, monitor):
    computed, problems = measure(cxx, built)
    if problems:
        raise Failure("stack analysis: " + "; ".join(problems))
    top = symbol_address(cxx, built["elf"], "__stack_top__")
    bss_end = symbol_address(cxx, built["elf"], "__bss_end__")
    window = min(top - bss_end, 4096)  # well beyond any stack this firmware can use
    words = monitor.words(top - window, window // 4)
    check(all(w is not None for w in words), f"monitor returned {window} bytes below the stack top")
    check(words[0] == STACK_PAINT, "paint intact at the bottom of the window (the stack stayed above it)")
    deepest = next(i for i, w in enumerate(words) if w != STACK_PAINT)
    used = window - 4 * deepest
    bound = computed["main_stack"] + computed["isr_stack"] + EXCEPTION_FRAME
    check(0 < used <= bound,
          f"stack used in the run: {used} B, within the computed worst case of {bound} B")


def run_board(args, cxx, qemu_path, board, cpu, macro, script):
    built, error = build(cxx, args, board, cpu, macro, script)
    if error:
        raise Failure(error)
    port = free_port()
    # A short directory of its own: Unix socket paths are limited to about 100 bytes.
    socket_dir = tempfile.mkdtemp(prefix="tcpcan-gw-")
    monitor_path = os.path.join(socket_dir, "monitor.sock")
    cmd = [qemu_path, "-M", board, "-display", "none", "-monitor", f"unix:{monitor_path},server=on,wait=off",
           "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off", "-kernel", built["elf"]]
    print(f"$ {' '.join(cmd)}")
    qemu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        monitor = Monitor(monitor_path)
        raw_scenario(port)
        client_scenario(args.tcpcan, port, qemu)
        stack_check(cxx, built, monitor)
        monitor.close()
    finally:
        qemu.kill()
        output = qemu.communicate()[0]
        shutil.rmtree(socket_dir, ignore_errors=True)
        if output.strip():
            print("  qemu said: " + output.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cxx", default="")
    parser.add_argument("--qemu", default="")
    parser.add_argument("--tcpcan", required=True, help="the built tcpcan program")
    parser.add_argument("--port-dir", required=True)
    parser.add_argument("--include", required=True)
    parser.add_argument("--probe", required=True, help="tests/core/gateway_session_size.cpp (built alongside)")
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--boards", nargs="*", default=[b[0] for b in BOARDS])
    args = parser.parse_args()

    cxx = args.cxx or shutil.which("arm-none-eabi-g++")
    qemu_path = args.qemu or shutil.which("qemu-system-arm")
    if not cxx:
        print("SKIP: arm-none-eabi-g++ not found (install gcc-arm-none-eabi, libnewlib-arm-none-eabi)")
        return 77
    if not qemu_path:
        print("SKIP: qemu-system-arm not found (install qemu-system-arm)")
        return 77
    os.makedirs(args.outdir, exist_ok=True)
    if missing_cxx_library(cxx, args.outdir):
        print(f"SKIP: {cxx} has no C++ standard headers (install libstdc++-arm-none-eabi-newlib)")
        return 77

    failed = False
    for board, cpu, macro, script in BOARDS:
        if board not in args.boards:
            continue
        print(f"== reference gateway on {board} ({cpu})")
        try:
            run_board(args, cxx, qemu_path, board, cpu, macro, script)
            print(f"PASS {board}\n")
        except Failure as e:
            print(f"FAIL {board}: {e}\n")
            failed = True
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Integration tests: tcpcan processes over 127.0.0.1 with the stdio CAN port ('-').

Frames written to one process's stdin must come out of the other's stdout; each test
asserts on the exact frames (the ID#DATA part of each candump line, in order, and their
count). Python standard library only.

Usage: test_bridge.py [--tcpcan PATH] [unittest names, e.g. TestFrames or
       TestFrames.test_canip_v2]        (PATH also from $TCPCAN)
Prints unittest's summary, then a line "N passed, M failed"; exits non-zero on failure.
"""
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

TCPCAN = os.environ.get("TCPCAN", "")

START_TIMEOUT = 10.0  # s: a process logs 'listening on' / agreement within this
FRAME_TIMEOUT = 10.0  # s: expected frames arrive within this
STOP_TIMEOUT = 10.0  # s: a process exits after SIGTERM within this

LINE_RE = re.compile(r"^\((\d{10})\.(\d{6})\) tcpcan (\S+)$")
STDERR_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} (DEBUG|INFO|WARNING|ERROR) +\S")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_stats(text, label="final stats"):
    """key=value pairs of the last '<label>:' line in text (None when there is none)."""
    found = None
    for line in text.splitlines():
        if (label + ":") in line:
            found = line
    if found is None:
        return None
    return {k: float(v) if "." in v else int(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", found)}


def hexbytes(n, start=0):
    return "".join("%02X" % ((start + i) & 0xFF) for i in range(n))


# (stdin line, expected ID#DATA on the far side). Every kind of frame: classic, extended,
# RTR with and without a length, zero length, FD with and without BRS/ESI up to 64 bytes,
# error frame, a candump log line, lower case and '.' separators.
FRAME_CASES = [
    ("123#1122", "123#1122"),
    ("1ABCDE0F#0102030405060708", "1ABCDE0F#0102030405060708"),
    ("00000001#FF", "00000001#FF"),
    ("7FF#R4", "7FF#R4"),
    ("123#R", "123#R"),
    ("1ABCDE0F#R8", "1ABCDE0F#R8"),
    ("000#", "000#"),
    ("1FFFFFFF#", "1FFFFFFF#"),
    ("123##0", "123##4"),
    ("123##1AABB", "123##5AABB"),
    ("456##2" + hexbytes(12), "456##6" + hexbytes(12)),
    ("1ABCDE0F##3" + hexbytes(64, 0xC0), "1ABCDE0F##7" + hexbytes(64, 0xC0)),
    ("12345678##4" + hexbytes(16, 0x10), "12345678##4" + hexbytes(16, 0x10)),
    ("321##1" + hexbytes(8), "321##5" + hexbytes(8)),
    ("(1700000000.000001) can0 321#DEADBEEF", "321#DEADBEEF"),
    ("20000080#0000000000000000", "20000080#0000000000000000"),
    ("1abcdef#aabb", None),  # 7 digits: refused by the parser (never sent), see below
    ("0abcdef0#aa.bb.cc", "0ABCDEF0#AABBCC"),
    ("7ff#", "7FF#"),
]
FRAME_INPUT = [line for line, _ in FRAME_CASES]
FRAME_EXPECTED = [out for _, out in FRAME_CASES if out is not None]


class Proc:
    """One tcpcan process: stdin a pipe we keep open, stdout and stderr in files."""

    def __init__(self, testcase, name, args, stdin_file=None):
        self.name = name
        self.args = list(args)
        tmp = testcase.tmpdir
        self.out_path = os.path.join(tmp, name + ".out")
        self.err_path = os.path.join(tmp, name + ".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            stdin = stdin_file if stdin_file is not None else subprocess.PIPE
            self.p = subprocess.Popen([TCPCAN] + self.args, stdin=stdin, stdout=out, stderr=err)
        testcase.addCleanup(self.cleanup)

    # ---- input
    def send(self, lines):
        data = "".join(line + "\n" for line in lines).encode()
        self.p.stdin.write(data)
        self.p.stdin.flush()

    # ---- output
    def err(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def raw_lines(self):
        """Complete stdout lines so far (a line without its newline is not counted)."""
        with open(self.out_path, "rb") as f:
            data = f.read().decode(errors="replace")
        return data.split("\n")[:-1]

    def frames(self):
        """The ID#DATA part of each stdout line (lines that are not candump lines stay whole)."""
        result = []
        for line in self.raw_lines():
            m = LINE_RE.match(line)
            result.append(m.group(3) if m else "BAD LINE: " + line)
        return result

    def wait_err(self, pattern, count=1, timeout=START_TIMEOUT):
        """True once `pattern` (a regex) matches `count` times in stderr; False at the deadline
        or when the process ended without it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            if len(regex.findall(self.err())) >= count:
                return True
            if time.monotonic() >= deadline:
                return False
            if self.p.poll() is not None:
                return len(regex.findall(self.err())) >= count
            time.sleep(0.02)

    def wait_lines(self, n, timeout=FRAME_TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self.raw_lines()) < n and time.monotonic() < deadline and self.p.poll() is None:
            time.sleep(0.02)
        return self.frames()

    # ---- ending
    def running(self):
        return self.p.poll() is None

    def terminate(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)

    def wait(self, timeout=STOP_TIMEOUT):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def cleanup(self):
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGCONT)
                self.p.kill()
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        if self.p.stdin is not None:
            try:
                self.p.stdin.close()
            except OSError:
                pass

    def describe(self):
        lines = self.raw_lines()
        return "--- %s: tcpcan %s\n--- stderr:\n%s--- stdout (%d lines%s):\n%s\n" % (
            self.name, " ".join(self.args), self.err(), len(lines), ", first 40" if len(lines) > 40 else "",
            "\n".join(lines[:40]))


class BridgeTest(unittest.TestCase):
    """Starts and stops tcpcan processes; on failure the message carries their logs."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="tcpcan-it-")
        self.addCleanup(self._tmp.cleanup)
        self.tmpdir = self._tmp.name
        self.procs = []

    def logs(self):
        return "\n" + "".join(p.describe() for p in self.procs)

    def start(self, name, args, stdin_file=None):
        p = Proc(self, name, args, stdin_file)
        self.procs.append(p)
        return p

    def start_server(self, port, extra=(), form="canip", name="server", stdin_file=None):
        if form == "canip":
            args = ["server", "--can", "-", "--bind", "127.0.0.1", "--port", str(port)] + list(extra)
        else:
            args = ["--serve", "--host", "127.0.0.1", "--port", str(port)] + list(extra) + ["-"]
        s = self.start(name, args, stdin_file)
        self.assertTrue(s.wait_err(r"listening on 127\.0\.0\.1:%d" % port), "server did not listen" + self.logs())
        return s

    def start_client(self, port, extra=(), form="canip", name="client", version=2, stdin_file=None,
                     host="127.0.0.1"):
        if form == "canip":
            args = ["client", "--can", "-", "--host", host, "--port", str(port)] + list(extra)
        else:
            args = ["--host", host, "--port", str(port)] + list(extra) + ["-"]
        c = self.start(name, args, stdin_file)
        if version is not None:
            self.wait_agreed(c, version)
        return c

    def wait_agreed(self, proc, version, count=1, timeout=START_TIMEOUT):
        # Version 2 sessions carry frames once the 'h' exchange is done ("features agreed").
        pattern = r"version 1 agreed" if version == 1 else r"features agreed"
        self.assertTrue(proc.wait_err(pattern, count, timeout),
                        "%s: no '%s' (x%d)%s" % (proc.name, pattern, count, self.logs()))

    def wait_frames(self, proc, expected, timeout=FRAME_TIMEOUT):
        """Waits for len(expected) lines, then asserts the exact frames."""
        got = proc.wait_lines(len(expected), timeout)
        self.assertEqual(got, expected, "frames on %s's stdout%s" % (proc.name, self.logs()))
        return got

    def stop(self, *procs, status=0):
        """SIGTERM all, wait, assert exit status and the final stats line; returns their stats."""
        for p in procs:
            p.terminate()
        stats = []
        for p in procs:
            rc = p.wait()
            self.assertEqual(rc, status, "%s exit status%s" % (p.name, self.logs()))
            err = p.err()
            self.assertIn("final stats:", err, "%s printed no final stats%s" % (p.name, self.logs()))
            stats.append(parse_stats(err))
        for p in procs:
            for line in p.err().splitlines():
                self.assertRegex(line, STDERR_RE, "%s: log line without timestamp and level" % p.name)
        return stats

    def assert_stdout_lines_well_formed(self, proc):
        for line in proc.raw_lines():
            self.assertRegex(line, LINE_RE, "%s: stdout line is not a candump log line" % proc.name)


# ---------------------------------------------------------------------------------------
class TestFrames(BridgeTest):
    """Every kind of frame, both directions, every version and command-line form."""

    def exchange(self, server_form="canip", client_form="canip", server_extra=(), client_extra=(), version=2):
        port = free_port()
        server = self.start_server(port, server_extra, server_form)
        client = self.start_client(port, client_extra, client_form, version=version)
        self.wait_agreed(server, version)
        server.send(FRAME_INPUT)
        client.send(FRAME_INPUT)
        self.wait_frames(server, FRAME_EXPECTED)
        self.wait_frames(client, FRAME_EXPECTED)
        self.assert_stdout_lines_well_formed(server)
        self.assert_stdout_lines_well_formed(client)
        s_stats, c_stats = self.stop(server, client)
        n = len(FRAME_EXPECTED)
        for who, st in (("server", s_stats), ("client", c_stats)):
            self.assertEqual(st["from_bus"], n, who + self.logs())
            self.assertEqual(st["to_bus"], n, who + self.logs())
            self.assertEqual(st["sent"], n, who + self.logs())
            self.assertEqual(st["received"], n, who + self.logs())
            self.assertEqual(st["dropped"], 0, who + self.logs())
            self.assertEqual(st["bad_input"], 1, who + " (the 7-digit id line)" + self.logs())
        # The refused input line is reported with its line number.
        self.assertIn("stdin line 17", client.err(), self.logs())
        agreed = "version %d agreed" % version
        self.assertIn(agreed, client.err(), self.logs())
        self.assertIn(agreed, server.err(), self.logs())
        return server, client

    def test_canip_v2(self):
        server, client = self.exchange()
        self.assertIn("features agreed: seq", client.err())

    def test_canip_v1_client(self):
        self.exchange(client_extra=["--protocol-version", "1"], version=1)

    def test_canip_v1_server(self):
        # A version-2 client meets a server limited to 1: the server proposes 1, the client accepts.
        self.exchange(server_extra=["--protocol-version", "1"], version=1)

    def test_canip_v1_both(self):
        self.exchange(server_extra=["--protocol-version", "1"], client_extra=["--protocol-version", "1"], version=1)

    def test_original_v2(self):
        self.exchange(server_form="original", client_form="original")

    def test_original_v1_client(self):
        self.exchange(server_form="original", client_form="original", client_extra=["--protocol-version", "1"],
                      version=1)

    def test_original_v1_server(self):
        self.exchange(server_form="original", client_form="original", server_extra=["--protocol-version", "1"],
                      version=1)

    def test_original_v1_both(self):
        self.exchange(server_form="original", client_form="original", server_extra=["--protocol-version", "1"],
                      client_extra=["--protocol-version", "1"], version=1)

    def test_mixed_original_client_canip_server(self):
        self.exchange(server_form="canip", client_form="original")

    def test_mixed_original_client_canip_server_v1(self):
        self.exchange(server_form="canip", client_form="original", client_extra=["--protocol-version", "1"],
                      version=1)

    def test_mixed_canip_client_original_server(self):
        self.exchange(server_form="original", client_form="canip")

    def test_no_seq_and_timestamps_features(self):
        # Feature combinations do not change what crosses.
        server, client = self.exchange(server_extra=["--no-seq", "--timestamps"], client_extra=["--timestamps"])
        self.assertIn("features agreed: ts", client.err(), self.logs())

    def test_ipv6_loopback(self):
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                s.bind(("::1", 0))
                port = s.getsockname()[1]
        except OSError:
            self.skipTest("no IPv6 loopback here")
        server = self.start("server", ["server", "--can", "-", "--bind", "::1", "--port", str(port)])
        self.assertTrue(server.wait_err(r"listening on \S*::1\S*%d" % port), "no IPv6 listen" + self.logs())
        client = self.start_client(port, host="::1")
        server.send(["123#11", "1ABCDE0F##1AABB"])
        client.send(["7FF#R4", "000#"])
        self.wait_frames(client, ["123#11", "1ABCDE0F##5AABB"])
        self.wait_frames(server, ["7FF#R4", "000#"])
        self.stop(server, client)

    def test_stdin_from_file_and_eof(self):
        # stdin a regular file (always ready, EOF at the end): every line still crosses.
        path = os.path.join(self.tmpdir, "frames.log")
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in FRAME_INPUT))
        port = free_port()
        server = self.start_server(port)
        with open(path, "rb") as stdin:
            client = self.start_client(port, stdin_file=stdin)
        self.wait_frames(server, FRAME_EXPECTED)
        self.assertTrue(client.wait_err(r"stdin closed after %d lines" % len(FRAME_INPUT)), self.logs())
        # After EOF the client still forwards frames from the server.
        server.send(["555#55"])
        self.wait_frames(client, ["555#55"])
        self.stop(server, client)


# ---------------------------------------------------------------------------------------
class TestFilters(BridgeTest):
    """--filter / --filter-file / --block / --block-file on the sending side, --subscribe."""

    def client_to_server(self, client_extra, lines, expected, server_extra=()):
        port = free_port()
        server = self.start_server(port, server_extra)
        client = self.start_client(port, client_extra)
        client.send(lines)
        self.wait_frames(server, expected)
        # Order is kept, so nothing that should not cross can still be on its way: check
        # again after the stop that nothing else arrived.
        s_stats, c_stats = self.stop(server, client)
        self.assertEqual(server.frames(), expected, self.logs())
        self.assertEqual(c_stats["from_bus"], len(lines), self.logs())
        self.assertEqual(c_stats["filtered"], len(lines) - len(expected), self.logs())
        self.assertEqual(c_stats["sent"], len(expected), self.logs())
        self.assertEqual(s_stats["to_bus"], len(expected), self.logs())
        return server, client

    def test_candump_id_mask(self):
        # 123:7FF is standard id 0x123 only; error frames always pass; the last frame is a sentinel.
        self.client_to_server(
            ["--filter", "123:7FF"],
            ["123#01", "124#02", "00000123#03", "20000004#0000000000000000", "1ABCDE0F#04", "123#05"],
            ["123#01", "20000004#0000000000000000", "123#05"])

    def test_ranges_and_extended(self):
        self.client_to_server(
            ["--filter", "100-1FF", "--filter", "1ABCDE00-1ABCDEFFx"],
            ["0FF#01", "100#02", "1FF#03", "200#04", "1ABCDE0F#05", "1ABCDF00#06", "00000150#07", "150#08"],
            ["100#02", "1FF#03", "1ABCDE0F#05", "150#08"])

    def test_extended_suffix(self):
        # 123x is extended 0x123 only, not standard 0x123.
        self.client_to_server(
            ["--filter", "123x"],
            ["123#01", "00000123#02", "00000124#03", "00000123#04"],
            ["00000123#02", "00000123#04"])

    def test_mask_and_list_forms(self):
        # id/mask, several entries in one argument (comma and blank separated), 8-digit candump form.
        self.client_to_server(
            ["--filter", "100/700, 0x300  12345678:1FFFFFFF"],
            ["100#01", "1AB#02", "200#03", "300#04", "301#05", "12345678#06", "12345679#07", "1FF#08"],
            ["100#01", "1AB#02", "300#04", "12345678#06", "1FF#08"])

    def test_inverted_candump_form(self):
        # 123~7FF: everything except standard 0x123.
        self.client_to_server(
            ["--filter", "123~7FF"],
            ["123#01", "124#02", "00000123#03", "123#04", "7FF#05"],
            ["124#02", "00000123#03", "7FF#05"])

    def test_filter_file_with_comments(self):
        path = os.path.join(self.tmpdir, "filters.txt")
        with open(path, "w") as f:
            f.write("# frames this side forwards\n"
                    "123        # one exact id\n"
                    "\n"
                    "200-20F, 1ABCDE0Fx   # a range and an extended id\n"
                    "# 300\n")
        self.client_to_server(
            ["--filter-file", path],
            ["123#01", "124#02", "205#03", "300#04", "1ABCDE0F#05", "00000123#06", "20F#07"],
            ["123#01", "205#03", "1ABCDE0F#05", "20F#07"])

    def test_filter_on_server_side(self):
        # The server's --filter applies to frames from its bus (stdin) towards clients.
        port = free_port()
        server = self.start_server(port, ["--filter", "200-2FF"])
        client = self.start_client(port)
        server.send(["100#01", "200#02", "2FF#03", "300#04", "250#05"])
        # Frames from the client are not subject to the server's --filter.
        client.send(["100#AA", "300#BB"])
        self.wait_frames(client, ["200#02", "2FF#03", "250#05"])
        self.wait_frames(server, ["100#AA", "300#BB"])
        s_stats, c_stats = self.stop(server, client)
        self.assertEqual(client.frames(), ["200#02", "2FF#03", "250#05"], self.logs())
        self.assertEqual(s_stats["filtered"], 2, self.logs())
        self.assertEqual(s_stats["sent"], 3, self.logs())

    def test_block(self):
        self.client_to_server(
            ["--block", "123", "--block", "300-3FF"],
            ["123#01", "124#02", "300#03", "3FF#04", "400#05", "00000123#06", "123#07", "2FF#08"],
            ["124#02", "400#05", "00000123#06", "2FF#08"])

    def test_filter_and_block(self):
        # The block list wins over the allow list.
        self.client_to_server(
            ["--filter", "100-1FF", "--block", "150"],
            ["100#01", "150#02", "1FF#03", "200#04", "151#05"],
            ["100#01", "1FF#03", "151#05"])

    def test_block_file(self):
        path = os.path.join(self.tmpdir, "block.txt")
        with open(path, "w") as f:
            f.write("# never forward these\n123\n1ABCDE0Fx # an extended one\n")
        self.client_to_server(
            ["--block-file", path],
            ["123#01", "124#02", "1ABCDE0F#03", "1ABCDE0E#04"],
            ["124#02", "1ABCDE0E#04"])

    def test_subscribe(self):
        port = free_port()
        server = self.start_server(port)
        client = self.start_client(port, ["--subscribe", "200-2FF", "--subscribe", "1ABCDE0Fx"])
        self.assertTrue(server.wait_err(r"subscribed with 2 filter entries"), "no subscription" + self.logs())
        sent = ["100#01", "250#02", "2FF#03", "300#04", "1ABCDE0F#05", "00000250#06", "20000004#0000000000000000",
                "200#08"]
        wanted = ["250#02", "2FF#03", "1ABCDE0F#05", "20000004#0000000000000000", "200#08"]
        server.send(sent)
        # The subscription does not limit what the client sends.
        client.send(["100#AA", "300#BB"])
        self.wait_frames(client, wanted)
        self.wait_frames(server, ["100#AA", "300#BB"])
        s_stats, c_stats = self.stop(server, client)
        self.assertEqual(client.frames(), wanted, self.logs())
        # The server read every frame, sent only the matching ones and counts the rest as filtered.
        self.assertEqual(s_stats["from_bus"], len(sent), self.logs())
        self.assertEqual(s_stats["sent"], len(wanted), self.logs())
        self.assertEqual(s_stats["dropped"], 0, self.logs())
        self.assertEqual(c_stats["received"], len(wanted), self.logs())
        self.assertEqual(s_stats["filtered"], len(sent) - len(wanted),
                         "server stats must show the frames its client's subscription filtered" + self.logs())

    def test_subscribe_over_version_1_filters_locally(self):
        port = free_port()
        server = self.start_server(port)
        client = self.start_client(port, ["--subscribe", "200-2FF", "--protocol-version", "1"], version=1)
        self.assertTrue(client.wait_err(r"version 1 cannot subscribe"), self.logs())
        server.send(["100#01", "250#02", "300#03", "2FF#04"])
        self.wait_frames(client, ["250#02", "2FF#04"])
        self.stop(server, client)
        self.assertEqual(client.frames(), ["250#02", "2FF#04"], self.logs())


# ---------------------------------------------------------------------------------------
class TestSessions(BridgeTest):
    """Timestamps, several clients, misbehaving clients, --read-only, v1 interop."""

    def test_timestamps_preserved(self):
        port = free_port()
        server = self.start_server(port, ["--timestamps"])
        client = self.start_client(port, ["--timestamps"])
        self.assertIn("features agreed: seq,ts", client.err(), self.logs())
        before = time.time()
        client.send(["(1700000000.123456) can0 123#11", "(1700000001.5) vcan1 1ABCDE0F##1AABB", "125#33"])
        server.send(["(1600000000.000007) can9 7FF#R", "126#44"])
        self.wait_frames(server, ["123#11", "1ABCDE0F##5AABB", "125#33"])
        self.wait_frames(client, ["7FF#R", "126#44"])
        after = time.time()
        s_lines, c_lines = server.raw_lines(), client.raw_lines()
        self.assertEqual(s_lines[0], "(1700000000.123456) tcpcan 123#11", self.logs())
        self.assertEqual(s_lines[1], "(1700000001.500000) tcpcan 1ABCDE0F##5AABB", self.logs())
        self.assertEqual(c_lines[0], "(1600000000.000007) tcpcan 7FF#R", self.logs())
        # A short-form line has no timestamp: the receiver writes its own clock.
        for line in (s_lines[2], c_lines[1]):
            ts = float(LINE_RE.match(line).group(1) + "." + LINE_RE.match(line).group(2))
            self.assertTrue(before - 5 <= ts <= after + 5, "wall-clock timestamp expected: " + line + self.logs())
        self.stop(server, client)

    def test_timestamps_need_both_sides(self):
        # Only the client offers TS: not agreed, so the server stamps frames with its own clock.
        port = free_port()
        server = self.start_server(port)
        client = self.start_client(port, ["--timestamps"])
        self.assertIn("features agreed: seq", client.err(), self.logs())
        self.assertNotIn("seq,ts", client.err(), self.logs())
        before = time.time()
        client.send(["(1700000000.123456) can0 123#11"])
        self.wait_frames(server, ["123#11"])
        line = server.raw_lines()[0]
        ts = float(LINE_RE.match(line).group(1) + "." + LINE_RE.match(line).group(2))
        self.assertTrue(before - 5 <= ts <= time.time() + 5, line + self.logs())
        self.stop(server, client)

    def test_three_clients(self):
        port = free_port()
        server = self.start_server(port)
        c1 = self.start_client(port, name="client1")
        c2 = self.start_client(port, name="client2")
        c3 = self.start_client(port, name="client3")
        self.wait_agreed(server, 2, count=3)
        # A bus frame reaches every client.
        server.send(["100#01", "1ABCDE0F##1AABB"])
        for c in (c1, c2, c3):
            self.wait_frames(c, ["100#01", "1ABCDE0F##5AABB"])
        # A frame from client 1 reaches the bus and the other clients, not client 1.
        c1.send(["201#11", "202#R"])
        self.wait_frames(server, ["201#11", "202#R"])
        for c in (c2, c3):
            self.wait_frames(c, ["100#01", "1ABCDE0F##5AABB", "201#11", "202#R"])
        # The server has handled client 1's frames (they are on its stdout): a later bus frame
        # is a sentinel; client 1 gets it and nothing of its own before it.
        server.send(["300#03"])
        self.wait_frames(c1, ["100#01", "1ABCDE0F##5AABB", "300#03"])
        c3.send(["333#33"])
        self.wait_frames(server, ["201#11", "202#R", "333#33"])
        self.wait_frames(c1, ["100#01", "1ABCDE0F##5AABB", "300#03", "333#33"])
        self.wait_frames(c2, ["100#01", "1ABCDE0F##5AABB", "201#11", "202#R", "300#03", "333#33"])
        server.send(["3FF#FF"])
        self.wait_frames(c3, ["100#01", "1ABCDE0F##5AABB", "201#11", "202#R", "300#03", "3FF#FF"])
        stats = self.stop(server, c1, c2, c3)
        self.assertEqual(stats[0]["from_bus"], 4, self.logs())
        self.assertEqual(stats[0]["to_bus"], 3, self.logs())
        self.assertEqual(stats[0]["received"], 3, self.logs())

    @staticmethod
    def recv_all(sock, timeout=5.0):
        """Bytes until EOF (or the deadline); (data, eof)."""
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                break
            except ConnectionResetError:
                return data, True
            if not chunk:
                return data, True
            data += chunk
        return data, False

    @staticmethod
    def recv_exact(sock, n, timeout=5.0):
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < n and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(n - len(data))
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        return data

    @staticmethod
    def messages(data):
        out = []
        i = 0
        while i + 2 <= len(data):
            n = data[i + 1]
            out.append((chr(data[i]), data[i + 2:i + 2 + n]))
            i += 2 + n
        return out

    def test_garbage_clients_are_closed(self):
        port = free_port()
        server = self.start_server(port, ["--negotiation-timeout", "1"])
        good1 = self.start_client(port, name="good1")

        # 1. Not the protocol at all.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data, eof = self.recv_all(s)
            self.assertTrue(eof, "the server did not close an HTTP client" + self.logs())
        self.assertTrue(server.wait_err(r"protocol error: message other than 'v' before version agreement"),
                        self.logs())

        # 2. Negotiates version 2 properly, then sends an invalid 'f' (standard id 0x800).
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"v\x04\x00\x00\x00\x02")
            self.assertEqual(self.recv_exact(s, 6), b"v\x04\x00\x00\x00\x02", self.logs())
            h = self.recv_exact(s, 6)
            self.assertEqual(h[:2], b"h\x04", self.logs())
            s.sendall(b"h\x04\x00\x00\x00\x00")
            s.sendall(b"f\x06\x00\x00\x00\x08\x00\x00")
            data, eof = self.recv_all(s)
            self.assertTrue(eof, "the server did not close after a bad 'f'" + self.logs())
            closes = [p for t, p in self.messages(data) if t == "c"]
            self.assertTrue(closes and closes[0][0] == 2,
                            "expected a 'c' with reason 2 (protocol error), got %r%s" % (data, self.logs()))
            self.assertIn(b"frame content is invalid", closes[0][1:], self.logs())
        self.assertTrue(server.wait_err(r"protocol error: frame content is invalid"), self.logs())

        # 3. Version 1, then a version-2 message.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"v\x04\x00\x00\x00\x01")
            self.assertEqual(self.recv_exact(s, 6), b"v\x04\x00\x00\x00\x01", self.logs())
            s.sendall(b"f\x06\x00\x00\x00\x01\x23\x00")
            data, eof = self.recv_all(s)
            self.assertTrue(eof, "the server did not close a v1 peer sending 'f'" + self.logs())
        self.assertTrue(server.wait_err(r"protocol error: message other than 'd' in a version-1 session"),
                        self.logs())

        # 4. Says nothing: closed after --negotiation-timeout.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            t0 = time.monotonic()
            data, eof = self.recv_all(s, timeout=6)
            self.assertTrue(eof, "a silent client was not closed" + self.logs())
            self.assertLess(time.monotonic() - t0, 4.5, self.logs())
        self.assertTrue(server.wait_err(r"closing: no agreement in time"), self.logs())

        # The real clients (one from before, one new) still work.
        good2 = self.start_client(port, name="good2")
        self.wait_agreed(server, 2, count=2)
        server.send(["123#01"])
        good1.send(["456#02"])
        self.wait_frames(good1, ["123#01"])
        self.wait_frames(server, ["456#02"])
        self.wait_frames(good2, ["123#01", "456#02"])
        good2.send(["789#03"])
        self.wait_frames(server, ["456#02", "789#03"])
        self.wait_frames(good1, ["123#01", "789#03"])
        self.assertTrue(server.running(), self.logs())
        self.stop(server, good1, good2)

    def test_read_only(self):
        port = free_port()
        server = self.start_server(port, ["--read-only", "--stats", "0.2"])
        self.assertIn("read-only", server.err(), self.logs())
        client = self.start_client(port)
        client.send(["123#01", "124#02", "1ABCDE0F##1AABB"])
        self.assertTrue(server.wait_err(r"stats: .* read_only=3\b"), "refused frames not counted" + self.logs())
        server.send(["200#AA", "201#R"])
        self.wait_frames(client, ["200#AA", "201#R"])
        s_stats, c_stats = self.stop(server, client)
        self.assertEqual(server.frames(), [], "a read-only server wrote client frames" + self.logs())
        self.assertEqual(s_stats["read_only"], 3, self.logs())
        self.assertEqual(s_stats["to_bus"], 0, self.logs())
        self.assertEqual(c_stats["sent"], 3, self.logs())
        self.assertEqual(client.frames(), ["200#AA", "201#R"], self.logs())

    def test_version_1_fallback_against_original_server(self):
        fake = FakeOriginalServer()
        self.addCleanup(fake.close)
        # Our 'd' for 123#112233, and one the fake sends (extended 1ABCDE0F, 8 bytes, and an RTR).
        from_client = b"d\x10" + struct.pack("<IB3x8s", 0x123, 3, bytes.fromhex("112233"))
        to_client = [struct.pack("<IB3x8s", 0x80000000 | 0x1ABCDE0F, 8, bytes.fromhex("0102030405060708")),
                     struct.pack("<IB3x8s", 0x40000000 | 0x7FF, 4, b"")]
        fake.to_send = to_client
        client = self.start_client(fake.port, version=None)
        self.assertTrue(client.wait_err(r"retrying with version 1"), "no fallback to version 1" + self.logs())
        self.wait_agreed(client, 1)
        client.send(["123#112233"])
        deadline = time.monotonic() + FRAME_TIMEOUT
        while len(fake.received) < len(from_client) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(bytes(fake.received), from_client, self.logs())
        self.wait_frames(client, ["1ABCDE0F#0102030405060708", "7FF#R4"])
        self.assertEqual(fake.proposals[:2], [b"v\x04\x00\x00\x00\x02", b"v\x04\x00\x00\x00\x01"], self.logs())
        self.assertEqual(fake.errors, [], self.logs())
        self.stop(client)


class FakeOriginalServer:
    """The original Python tcpcan server's wire behaviour: read 6 bytes; echo them if they
    propose version 1, else close at once; then 'd' messages both ways."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.proposals = []
        self.received = bytearray()
        self.to_send = []
        self.errors = []
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        deadline = time.monotonic() + 60
        while not self.stopping and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.2)
                hello = b""
                t_end = time.monotonic() + 5
                while len(hello) < 6 and time.monotonic() < t_end and not self.stopping:
                    try:
                        chunk = conn.recv(6 - len(hello))
                    except socket.timeout:
                        continue
                    if not chunk:
                        break
                    hello += chunk
                self.proposals.append(hello)
                if hello != b"v\x04\x00\x00\x00\x01":
                    continue  # closes the connection
                conn.sendall(hello)
                for frame in self.to_send:
                    conn.sendall(b"d\x10" + frame)
                while not self.stopping and time.monotonic() < deadline:
                    try:
                        chunk = conn.recv(4096)
                    except socket.timeout:
                        continue
                    except OSError as e:
                        self.errors.append(repr(e))
                        break
                    if not chunk:
                        break
                    self.received += chunk

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


# ---------------------------------------------------------------------------------------
class TestHeartbeat(BridgeTest):

    def test_dead_peer_and_reconnect(self):
        port = free_port()
        server = self.start_server(port)
        client = self.start_client(port, ["--heartbeat", "0.3", "--dead-after", "1", "--negotiation-timeout", "1"])
        server.send(["100#01"])
        self.wait_frames(client, ["100#01"])
        try:
            server.p.send_signal(signal.SIGSTOP)
            t0 = time.monotonic()
            self.assertTrue(client.wait_err(r"dead peer", timeout=5), "no dead peer within 5 s" + self.logs())
            detected = time.monotonic() - t0
            self.assertGreaterEqual(detected, 0.5, "dead peer declared too early" + self.logs())
        finally:
            server.p.send_signal(signal.SIGCONT)
        self.assertTrue(client.wait_err(r"version 2 agreed", count=2, timeout=20),
                        "no reconnection after SIGCONT" + self.logs())
        self.wait_agreed(client, 2, count=2, timeout=5)
        self.assertNotIn("version 1 agreed", client.err(), self.logs())
        print("\n  dead peer detected after %.2f s" % detected, file=sys.stdout)
        server.send(["200#02"])
        client.send(["300#03"])
        self.wait_frames(client, ["100#01", "200#02"])
        self.wait_frames(server, ["300#03"])
        self.stop(server, client)

    def test_heartbeat_keeps_an_idle_link(self):
        # With heartbeats both ways an idle link is never declared dead.
        port = free_port()
        server = self.start_server(port, ["--heartbeat", "0.2", "--dead-after", "0.8"])
        client = self.start_client(port, ["--heartbeat", "0.2", "--dead-after", "0.8"])
        time.sleep(2.0)
        self.assertNotIn("dead peer", client.err() + server.err(), self.logs())
        server.send(["123#01"])
        client.send(["456#02"])
        self.wait_frames(client, ["123#01"])
        self.wait_frames(server, ["456#02"])
        self.stop(server, client)


# ---------------------------------------------------------------------------------------
class TestCommandLine(BridgeTest):

    def run_tcpcan(self, args, timeout=20):
        p = subprocess.Popen([TCPCAN] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=timeout)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=STOP_TIMEOUT)
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def assert_usage_error(self, args, *needles):
        rc, out, err = self.run_tcpcan(args)
        self.assertEqual(rc, 2, "tcpcan %s: status %s, stderr %r" % (" ".join(args), rc, err))
        self.assertTrue(err.strip(), "tcpcan %s: no message" % " ".join(args))
        self.assertEqual(out, "", "tcpcan %s: wrote to stdout" % " ".join(args))
        for needle in needles:
            self.assertIn(needle, err, "tcpcan %s" % " ".join(args))
        return err

    def test_unknown_option(self):
        self.assert_usage_error(["server", "--can", "-", "--bogus"], "--bogus")
        self.assert_usage_error(["client", "--can", "-", "--host", "127.0.0.1", "--bogus"], "--bogus")
        self.assert_usage_error(["--bogus", "-"], "--bogus")

    def test_bad_filter_text(self):
        err = self.assert_usage_error(["server", "--can", "-", "--filter", "12G"], "12G", "hexadecimal digit")
        self.assertRegex(err, r"'12G'(: |, | )column 3", "the position must be set off from the quoted spec")
        self.assert_usage_error(["server", "--can", "-", "--filter", "800"], "800", "0x7FF")
        self.assert_usage_error(["server", "--can", "-", "--filter", "200-100"], "200-100", "low bound")
        self.assert_usage_error(["--block", "1,,2", "-"], "1,,2", "empty filter entry")
        self.assert_usage_error(["client", "--can", "-", "--host", "127.0.0.1", "--subscribe", "123:"],
                                "123:", "missing value")

    def test_bad_filter_file(self):
        path = os.path.join(self.tmpdir, "bad.txt")
        with open(path, "w") as f:
            f.write("# ok so far\n123\n  12Z\n")
        err = self.assert_usage_error(["server", "--can", "-", "--filter-file", path], path, "line 3",
                                      "hexadecimal digit")
        self.assertRegex(err, r"line 3, column 5\b", err)
        self.assertNotRegex(err, r":\s*:", "doubled colon in %r" % err)
        self.assert_usage_error(["server", "--can", "-", "--filter-file", os.path.join(self.tmpdir, "none.txt")],
                                "none.txt")

    def test_protocol_version_3(self):
        self.assert_usage_error(["server", "--can", "-", "--protocol-version", "3"], "--protocol-version")
        self.assert_usage_error(["--protocol-version", "0", "-"], "--protocol-version")

    def test_missing_can(self):
        self.assert_usage_error(["server", "--port", "3333"], "--can")
        self.assert_usage_error(["client", "--host", "127.0.0.1"], "--can")
        self.assert_usage_error(["client", "--can", "-"], "--host")
        self.assert_usage_error(["--serve", "--host", "127.0.0.1"], "canif")

    def test_log_level(self):
        self.assert_usage_error(["server", "--can", "-", "--log-level", "LOUD"], "LOUD")

    def test_options_for_the_other_side(self):
        self.assert_usage_error(["client", "--can", "-", "--host", "127.0.0.1", "--read-only"], "--read-only")
        self.assert_usage_error(["server", "--can", "-", "--subscribe", "123"], "--subscribe")
        self.assert_usage_error(["server", "--can", "-", "--can-bitrate", "500000"], "--can-bitrate")
        self.assert_usage_error(["server", "--can", "-", "--port", "70000"], "--port")

    def test_help(self):
        for args in (["--help"], ["server", "--help"], ["client", "--help"]):
            rc, out, err = self.run_tcpcan(args)
            self.assertEqual(rc, 0, args)
            self.assertIn("--port", out + err, args)

    def test_no_such_can_interface(self):
        rc, out, err = self.run_tcpcan(["server", "--can", "nosuchcan0", "--bind", "127.0.0.1",
                                        "--port", str(free_port())])
        self.assertEqual(rc, 1, err)
        self.assertTrue("ip link show" in err or "SocketCAN" in err, err)
        self.assertRegex(err, r"ERROR +\S", err)

    def test_port_in_use(self):
        port = free_port()
        server = self.start_server(port)
        rc, out, err = self.run_tcpcan(["server", "--can", "-", "--bind", "127.0.0.1", "--port", str(port)])
        self.assertEqual(rc, 1, err)
        self.assertIn("cannot listen on 127.0.0.1 port %d" % port, err)
        self.assertIn("in use", err)
        rc, out, err = self.run_tcpcan(["--serve", "--host", "127.0.0.1", "--port", str(port), "-"])
        self.assertEqual(rc, 1, err)
        self.assertIn("in use", err)
        self.stop(server)

    def test_unresolvable_host(self):
        rc, out, err = self.run_tcpcan(["client", "--can", "-", "--host", "nosuchhost.invalid",
                                        "--port", str(free_port()), "--no-retry"])
        self.assertEqual(rc, 1, err)
        self.assertIn("resolve", err)
        self.assertIn("nosuchhost.invalid", err)
        rc, out, err = self.run_tcpcan(["--host", "nosuchhost.invalid", "--port", str(free_port()), "--no-retry", "-"])
        self.assertEqual(rc, 1, err)
        self.assertIn("resolve", err)

    def test_connection_refused_no_retry(self):
        rc, out, err = self.run_tcpcan(["client", "--can", "-", "--host", "127.0.0.1", "--port", str(free_port()),
                                        "--no-retry"])
        self.assertEqual(rc, 1, err)
        self.assertIn("refused", err.lower())


# ---------------------------------------------------------------------------------------
class TestThroughput(BridgeTest):
    COUNT = 100000
    STALL_TIMEOUT = 10.0  # s without a new line at the far end: fail
    TOTAL_TIMEOUT = 30.0  # s for all of them (well under a second on an idle machine)

    def test_100k_frames_in_order(self):
        port = free_port()
        server = self.start_server(port)
        client = self.start_client(port)
        lines = ["123#%016X" % i for i in range(self.COUNT)]
        errors = []

        def writer():
            try:
                for i in range(0, self.COUNT, 5000):
                    client.send(lines[i:i + 5000])
            except OSError as e:
                errors.append(repr(e))

        t0 = time.monotonic()
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        deadline = t0 + self.TOTAL_TIMEOUT
        count, last_progress = 0, t0
        while count < self.COUNT and server.running():
            now = time.monotonic()
            if now >= deadline or now - last_progress >= self.STALL_TIMEOUT:
                break
            time.sleep(0.05)
            n = len(server.raw_lines())
            if n != count:
                count, last_progress = n, time.monotonic()
        elapsed = time.monotonic() - t0
        thread.join(timeout=10)
        self.assertEqual(errors, [], self.logs())
        got = server.frames()
        print("\n  %d of %d frames client stdin -> server stdout in %.2f s (%.0f frames/s)"
              % (len(got), self.COUNT, elapsed, len(got) / elapsed if elapsed > 0 else 0), file=sys.stdout)
        self.assertEqual(len(got), self.COUNT, "frames lost or stuck" + self.logs())
        for i, frame in enumerate(got):
            if frame != "123#%016X" % i:
                self.fail("line %d: expected 123#%016X, got %s (lost or reordered)" % (i, i, frame))
        self.assert_stdout_lines_well_formed(server)
        s_stats, c_stats = self.stop(server, client)
        self.assertEqual(c_stats["from_bus"], self.COUNT, self.logs())
        self.assertEqual(c_stats["sent"], self.COUNT, self.logs())
        self.assertEqual(s_stats["received"], self.COUNT, self.logs())
        self.assertEqual(s_stats["to_bus"], self.COUNT, self.logs())
        self.assertEqual(s_stats["lost"], 0, self.logs())
        self.assertEqual(c_stats["dropped"] + s_stats["dropped"], 0, self.logs())

    def burst(self, from_server, n):
        """n lines written to one side's stdin at once, stdin kept open: all must cross."""
        port = free_port()
        server = self.start_server(port)
        client = self.start_client(port)
        sender, receiver = (server, client) if from_server else (client, server)
        expected = ["%03X#%04X" % (i % 0x800, i) for i in range(n)]
        sender.send(expected)
        got = receiver.wait_lines(n, FRAME_TIMEOUT)
        self.assertEqual(len(got), n, "%d of %d lines of a burst crossed; stdin stays open%s"
                         % (len(got), n, self.logs()))
        self.assertEqual(got, expected, self.logs())
        self.stop(server, client)

    def test_latency_budget_loses_nothing(self):
        port = free_port()
        server = self.start_server(port, ["--latency-budget", "5"])
        client = self.start_client(port, ["--latency-budget", "5"])
        for i in range(0, 3000, 100):
            client.send(["%03X#%04X" % (j % 0x800, j) for j in range(i, i + 100)])
            server.send(["%03X#%04X" % (j % 0x800, j) for j in range(i, i + 100)])
            time.sleep(0.002)
        expected = ["%03X#%04X" % (j % 0x800, j) for j in range(3000)]
        self.wait_frames(server, expected)
        self.wait_frames(client, expected)
        self.stop(server, client)

    def test_latency_budget_leaves_an_idle_bus_alone(self):
        """A quiet while starts only after a read that found frames: once the bus is idle, a
        sub-millisecond budget must not wake the server every budget (it waits on the bus)."""
        port = free_port()
        server = self.start_server(port, ["--latency-budget", "0.2"])
        client = self.start_client(port)
        for i in range(0, 10, 2):  # two at once: a read finds both, a quiet while starts
            server.send(["123#%02X" % i, "123#%02X" % (i + 1)])
            time.sleep(0.01)
        self.wait_frames(client, ["123#%02X" % i for i in range(10)])
        time.sleep(0.2)
        before = proc_context_switches(server.p.pid)
        time.sleep(1.0)
        woken = proc_context_switches(server.p.pid) - before
        # Idle: the once-a-second maintenance and statistics, nothing per budget (5,000 a second).
        self.assertLess(woken, 50, "an idle server with --latency-budget 0.2 woke %d times in 1 s%s"
                        % (woken, self.logs()))
        self.stop(server, client)

    def test_burst_of_2000_lines_client_to_server(self):
        self.burst(False, 2000)

    def test_burst_of_2000_lines_server_to_client(self):
        self.burst(True, 2000)


# ---------------------------------------------------------------------------------------
def proc_cpu_seconds(pid):
    """utime + stime of a process, in seconds (from /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_context_switches(pid):
    """Voluntary and involuntary context switches of every thread of a process."""
    n = 0
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, task)) as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    n += int(line.split()[1])
    return n


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_fd_limit(n):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


V2 = b"v\x04\x00\x00\x00\x02"
V1 = b"v\x04\x00\x00\x00\x01"


def agreed_raw_client(port, version=2, features=1, rcvbuf=None):
    """A raw socket that agrees (version 1 or 2 with 'h') and then does whatever the test says."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    if version == 2:
        s.sendall(V2 + b"h\x04" + struct.pack(">I", features))
    else:
        s.sendall(V1)
    return s


def f_message(can_id, data, seq=None):
    flags = 0x40 if seq is not None else 0
    body = struct.pack(">BIB", flags, can_id, len(data))
    if seq is not None:
        body += struct.pack(">I", seq)
    body += data
    return b"f" + bytes([len(body)]) + body


class TestAdversarial(BridgeTest):
    """Hostile and unlucky clients: each test reproduces a failure of the bridge before the
    hub core (silent lock-out, a stalled reader, log abuse, busy loops, memory per
    connection, slow recovery, silent downgrade, version-1 error frames)."""

    def test_silent_agreed_connections_do_not_lock_out_a_client(self):
        port = free_port()
        server = self.start_server(port, ["--max-clients", "16"])
        silent = []
        for i in range(16):
            silent.append(agreed_raw_client(port, version=1 if i % 2 else 2))
            self.addCleanup(silent[-1].close)
        self.assertTrue(server.wait_err(r"agreed", 16), self.logs())
        t0 = time.monotonic()
        client = self.start_client(port, version=None)
        # Refused while every silent session is younger than --evict-idle (2 s), retried, then in.
        self.assertTrue(server.wait_err(r"of silence to make room for", timeout=10.0),
                        "a client could not get in past 16 silent connections within 10 s" + self.logs())
        print("\n  client admitted after %.2f s past 16 silent connections" % (time.monotonic() - t0))
        # A frame read before the client's own session is ready is unforwarded (counted), so
        # offer it until one arrives.
        for _ in range(20):
            client.send(["123#C0FFEE"])
            if server.wait_lines(1, timeout=0.5):
                break
        self.assertEqual(server.frames()[:1], ["123#C0FFEE"], self.logs())
        server.send(["456#BEEF"])
        self.wait_frames(client, ["456#BEEF"])
        s_stats, _ = self.stop(server, client)
        self.assertGreaterEqual(s_stats["evicted"], 1, self.logs())

    def test_a_stalled_reader_does_not_stall_stdin_for_others(self):
        count = 1000000
        port = free_port()
        server = self.start_server(port, ["--stats", "1"])
        healthy = self.start_client(port, name="healthy")
        stalled = agreed_raw_client(port, rcvbuf=4096)  # agrees, then never reads
        self.addCleanup(stalled.close)
        self.wait_agreed(server, 2, count=2)
        lines = ["%03X#%08X" % (i & 0x7FF, i) for i in range(count)]
        errors = []

        def writer():
            try:
                for i in range(0, count, 10000):
                    server.send(lines[i:i + 10000])
            except OSError as e:
                errors.append(repr(e))

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 30)
        deadline = time.monotonic() + 90
        last, last_change = 0, time.monotonic()
        while time.monotonic() < deadline:
            n = len(healthy.raw_lines())
            if n >= count:
                break
            if n != last:
                last, last_change = n, time.monotonic()
            elif time.monotonic() - last_change > 15:
                break
            time.sleep(0.2)
        got = healthy.frames()
        self.assertEqual(len(got), count, "the healthy client stopped receiving (stalled by the other)" + self.logs())
        self.assertTrue(got == lines, "frames at the healthy client differ from those sent (order or content)")
        self.assertEqual(got[-1], "%03X#%08X" % ((count - 1) & 0x7FF, count - 1), self.logs())
        self.assertTrue(server.wait_err(r"is not reading: .* no longer paced to it"), self.logs())
        self.assertTrue(server.wait_err(r"frames dropped so far \(towards peer: output full [1-9]"), self.logs())
        s_stats, _ = self.stop(server, healthy)
        self.assertGreater(s_stats["output_full"], 0, "the stalled peer's drops were not counted" + self.logs())

    def test_peer_triggered_log_lines_are_limited_and_escaped(self):
        port = free_port()
        server = self.start_server(port)
        s = agreed_raw_client(port, features=1)
        self.assertTrue(server.wait_err(r"features agreed"), self.logs())
        # 3,000 frames whose sequence numbers jump around: each one a gap or a duplicate.
        burst = b"".join(f_message(0x100, b"\x01", seq=(i * 7919) % 50) for i in range(3000))
        s.sendall(burst)
        # A close text that tries to forge a log line of its own.
        text = b"bye\n2026-01-01 00:00:00.000000 ERROR   forged line"
        s.sendall(b"c" + bytes([1 + len(text)]) + b"\x00" + text)
        TestSessions.recv_all(s, timeout=3)
        s.close()
        self.assertTrue(server.wait_err(r"similar messages suppressed"), self.logs())
        err = server.err()
        seq_lines = len(re.findall(r"SEQ (gap|duplicate|late)", err))
        self.assertLessEqual(seq_lines, 15, "%d SEQ log lines from one peer" % seq_lines + self.logs())
        self.assertNotIn("\n2026-01-01 00:00:00.000000 ERROR", err, "a peer forged a log line" + self.logs())
        self.assertIn(r"bye\x0A2026-01-01", err, self.logs())
        self.stop(server)

    def test_a_blocked_stderr_never_blocks_the_loop(self):
        port = free_port()
        args = ["server", "--can", "-", "--bind", "127.0.0.1", "--port", str(port), "-v"]
        p = subprocess.Popen([TCPCAN] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
        time.sleep(0.5)
        client = self.start_client(port, version=None)
        self.assertTrue(client.wait_err(r"features agreed"), self.logs())
        n = 20000  # at -v every frame is a log line: far more than a pipe holds
        client.send(["321#%08X" % i for i in range(n)])
        out = b""
        deadline = time.monotonic() + 30
        import select
        while out.count(b"\n") < n and time.monotonic() < deadline:
            if select.select([p.stdout], [], [], 0.5)[0]:
                out += os.read(p.stdout.fileno(), 1 << 20)
        self.assertEqual(out.count(b"\n"), n, "frames stopped while nobody read stderr" + self.logs())
        collected = []

        def read_stderr():
            while True:
                chunk = os.read(p.stderr.fileno(), 65536)
                if not chunk:
                    return
                collected.append(chunk)

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        # Let the reader empty the full pipe first, so the lines at exit find room.
        deadline = time.monotonic() + 10
        while sum(len(c) for c in collected) < 60000 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=STOP_TIMEOUT), 0)
        reader.join(timeout=10)
        err = b"".join(collected).decode(errors="replace")
        self.assertRegex(err, r"\d+ log lines dropped: stderr was not taking them", err[-2000:])
        stats = parse_stats(err)
        self.assertGreater(stats["log_dropped"], 0, err[-2000:])
        self.stop(client)

    def test_out_of_descriptors_accept_backs_off(self):
        if os.environ.get("UBSAN_OPTIONS") is not None:
            # UBSan's vptr check probes memory through a pipe, which cannot be opened when
            # the process is out of descriptors: every virtual call is then reported.
            self.skipTest("UndefinedBehaviorSanitizer needs descriptors of its own")
        import resource
        port = free_port()

        def low_fd_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))

        args = ["server", "--can", "-", "--bind", "127.0.0.1", "--port", str(port), "--negotiation-timeout", "30"]
        err_path = os.path.join(self.tmpdir, "lowfd.err")
        with open(err_path, "wb") as err, open(os.path.join(self.tmpdir, "lowfd.out"), "wb") as out:
            p = subprocess.Popen([TCPCAN] + args, stdin=subprocess.PIPE, stdout=out, stderr=err,
                                 preexec_fn=low_fd_limit)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
        deadline = time.monotonic() + START_TIMEOUT
        while b"listening on" not in open(err_path, "rb").read() and time.monotonic() < deadline:
            time.sleep(0.05)
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(40):
            s = socket.socket()
            s.settimeout(2)
            s.connect(("127.0.0.1", port))  # queued by the kernel even when not accepted
            socks.append(s)
        time.sleep(0.5)
        cpu0 = proc_cpu_seconds(p.pid)
        time.sleep(3.0)
        cpu = proc_cpu_seconds(p.pid) - cpu0
        text = open(err_path, "rb").read().decode(errors="replace")
        print("\n  server CPU while out of descriptors: %.3f s in 3 s" % cpu)
        self.assertIn("Too many open files; not accepting new connections for 1 s", text)
        self.assertLess(cpu, 0.6, "the loop spins while out of descriptors" + text[-3000:])
        self.assertLessEqual(len(re.findall(r"accept: ", text)), 8, text[-3000:])
        self.assertTrue(p.poll() is None)

    def test_reset_while_the_bus_queue_is_full_costs_no_cpu(self):
        port = free_port()
        args = ["server", "--can", "-", "--bind", "127.0.0.1", "--port", str(port)]
        p = subprocess.Popen([TCPCAN] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=open(os.path.join(self.tmpdir, "rst.err"), "wb"))
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
        time.sleep(0.5)
        s = agreed_raw_client(port, features=0)  # frames without sequence numbers
        time.sleep(0.3)
        # Nobody reads the server's stdout: the bus is blocked and this client's queue fills.
        frames = b"".join(f_message(0x200, struct.pack(">I", i)) for i in range(20000))
        s.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 10
        while sent < len(frames) and time.monotonic() < deadline:
            try:
                sent += s.send(frames[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.05)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
        time.sleep(0.5)
        cpu0 = proc_cpu_seconds(p.pid)
        time.sleep(2.0)
        cpu = proc_cpu_seconds(p.pid) - cpu0
        print("\n  server CPU after a reset with a full bus queue: %.3f s in 2 s" % cpu)
        self.assertLess(cpu, 0.4, "the loop spins on a reset connection whose bus queue is full")
        out = b""
        deadline = time.monotonic() + 10
        import select
        while time.monotonic() < deadline and out.count(b"\n") < 2048:
            if select.select([p.stdout], [], [], 0.5)[0]:
                out += os.read(p.stdout.fileno(), 1 << 20)
        self.assertGreaterEqual(out.count(b"\n"), 2048, "frames queued before the reset were not delivered")
        self.assertTrue(p.poll() is None)

    def test_pending_connections_cost_little_memory(self):
        if os.environ.get("ASAN_OPTIONS") is not None:
            self.skipTest("resident memory under AddressSanitizer is its shadow memory, not ours")
        raise_fd_limit(4096)
        port = free_port()
        server = self.start_server(port, ["--max-pending", "1024", "--negotiation-timeout", "60"])
        base = proc_rss_kib(server.p.pid)
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(1024):
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.sendall(b"v\x04")  # half a proposal: it stays pending
            socks.append(s)
        deadline = time.monotonic() + 20
        while len(os.listdir("/proc/%d/fd" % server.p.pid)) < 1024 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        rss = proc_rss_kib(server.p.pid)
        print("\n  1,024 pending connections: server RSS %.1f MiB (%.1f MiB before, %.1f KiB each)"
              % (rss / 1024.0, base / 1024.0, (rss - base) / 1024.0))
        self.assertGreaterEqual(len(os.listdir("/proc/%d/fd" % server.p.pid)), 1024, self.logs())
        self.assertLess(rss, 32 * 1024, "1,024 pending connections take %d KiB" % rss)
        self.assertLess((rss - base) / 1024.0, 16.0, "more than 16 KiB per pending connection")
        for s in socks:
            s.close()
        socks.clear()
        self.stop(server)

    def test_reconnect_first_retry_within_250_ms(self):
        port = free_port()  # nobody listens yet
        client = self.start_client(port, version=None)
        self.assertTrue(client.wait_err(r"retrying in", 4), self.logs())
        delays = [float(d) for d in re.findall(r"retrying in ([0-9.]+) s", client.err())]
        self.assertLessEqual(delays[0], 0.25, self.logs())
        self.assertLessEqual(delays[1], 0.5, self.logs())
        self.assertGreater(max(delays[:4]), delays[0], "no backoff" + self.logs())
        server = self.start_server(port)
        t0 = time.monotonic()
        self.wait_agreed(client, 2)
        client.send(["7E0#0201"])
        self.wait_frames(server, ["7E0#0201"])
        print("\n  frames flow %.2f s after the server came up (retries so far: %s)"
              % (time.monotonic() - t0, ", ".join("%.2f" % d for d in delays)))
        self.stop(server, client)

    def test_server_restart_frames_flow_again_soon(self):
        port = free_port()
        server = self.start_server(port, name="server1")
        client = self.start_client(port)
        server.p.kill()
        server.p.wait()
        self.assertTrue(client.wait_err(r"retrying in"), self.logs())
        time.sleep(0.3)
        t0 = time.monotonic()
        server2 = self.start_server(port, name="server2")
        for _ in range(40):  # until the client's new session carries a frame
            client.send(["7E0#0301"])
            if server2.wait_lines(1, timeout=0.25):
                break
        elapsed = time.monotonic() - t0
        self.assertEqual(server2.frames()[:1], ["7E0#0301"], self.logs())
        print("\n  frames flow %.2f s after the restarted server listens (down ~0.3 s)" % elapsed)
        self.stop(server2, client)

    def test_min_protocol_version_refuses_the_fallback(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        proposals = []
        stop = threading.Event()

        def hang_up_on_everything():
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                conn.settimeout(2)
                try:
                    proposals.append(conn.recv(6))
                except OSError:
                    pass
                conn.close()

        thread = threading.Thread(target=hang_up_on_everything, daemon=True)
        thread.start()
        self.addCleanup(lambda: (stop.set(), thread.join(timeout=5)))
        strict = self.start_client(port, ["--min-protocol-version", "2"], version=None, name="strict")
        self.assertTrue(strict.wait_err(r"not falling back to version 1 \(--min-protocol-version 2\)", 3), self.logs())
        self.assertTrue(proposals, self.logs())
        self.assertEqual(set(proposals), {V2}, "a client with --min-protocol-version 2 proposed %r" % proposals)
        strict.terminate()
        strict.wait()
        del proposals[:]
        default = self.start_client(port, version=None, name="default")
        self.assertTrue(default.wait_err(r"WARNING .*retrying with version 1 .*no heartbeat"), self.logs())
        self.assertTrue(default.wait_err(r"retrying in"), self.logs())
        self.assertIn(V1, proposals, self.logs())
        default.terminate()
        default.wait()

    def test_min_protocol_version_on_the_server(self):
        port = free_port()
        server = self.start_server(port, ["--min-protocol-version", "2"])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(V1)
            data, eof = TestSessions.recv_all(s)
        self.assertEqual(data, b"v\x04\x00\x00\x00\x00", "expected 'v 0' (no common version)" + self.logs())
        self.assertTrue(eof, self.logs())
        self.assertTrue(server.wait_err(r"no protocol version in common"), self.logs())
        self.stop(server)

    def test_version_1_refuses_an_extended_error_frame(self):
        port = free_port()
        server = self.start_server(port)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(V1)
            self.assertEqual(TestSessions.recv_exact(s, 6), V1, self.logs())
            can_id = 0x80 | 0x20000000 | 0x80000000  # ERR | EFF
            s.sendall(b"d\x10" + struct.pack("<IB3x", can_id, 8) + b"\x00" * 8)
            data, eof = TestSessions.recv_all(s)
            self.assertTrue(eof, "the server kept a client that sent an ERR|EFF frame" + self.logs())
        self.assertTrue(server.wait_err(r"protocol error: frame content is invalid"), self.logs())
        s_stats = self.stop(server)[0]
        self.assertEqual(server.frames(), [], "an ERR|EFF frame reached the bus" + self.logs())
        self.assertEqual(s_stats["to_bus"], 0, self.logs())

    def test_allow_transmit_lets_only_matching_frames_reach_the_bus(self):
        port = free_port()
        server = self.start_server(port, ["--allow-transmit", "7DF,7E0-7EF"])
        client = self.start_client(port)
        other = self.start_client(port, name="other")
        client.send(["7DF#0201", "123#01", "7E8#02", "1ABCDE0F#03", "20000080#0000000000000000"])
        self.wait_frames(server, ["7DF#0201", "7E8#02"])
        self.wait_frames(other, ["7DF#0201", "7E8#02"])
        s_stats, _, _ = self.stop(server, client, other)
        self.assertEqual(s_stats["not_allowed"], 3, self.logs())
        self.assertEqual(s_stats["to_bus"], 2, self.logs())
        self.assertEqual(server.frames(), ["7DF#0201", "7E8#02"], self.logs())


# ---------------------------------------------------------------------------------------
def run_tests(module_name, argv):
    """The main() of every integration test file that runs the tcpcan program: --tcpcan PATH
    (or $TCPCAN), then the test classes named (all when none), and a closing "P passed,
    F failed" line, which scripts/test_report.py counts."""
    global TCPCAN
    args = list(argv[1:])
    if len(args) >= 2 and args[0] == "--tcpcan":
        TCPCAN = args[1]
        args = args[2:]
    if not TCPCAN or not os.access(TCPCAN, os.X_OK):
        print("tcpcan executable not found: pass --tcpcan PATH or set TCPCAN (got %r)" % TCPCAN, file=sys.stdout)
        print("0 passed, 1 failed")
        return 1
    TCPCAN = os.path.abspath(TCPCAN)
    loader = unittest.TestLoader()
    module = sys.modules[module_name]
    suite = loader.loadTestsFromNames(args, module) if args else loader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped) - len(result.expectedFailures)
    print("%d passed, %d failed" % (passed, failed))
    sys.stdout.flush()
    return 0 if failed == 0 and result.testsRun > 0 else 1


def main(argv):
    return run_tests(__name__, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

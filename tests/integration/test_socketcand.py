#!/usr/bin/env python3
"""Integration tests: `tcpcan server --listen socketcand@127.0.0.1:PORT` against real
socketcand clients.

- TestPythonCan: python-can from Debian (python3-can 4.1, `interface="socketcand"`) as the
  client, run with /usr/bin/python3 (the interpreter that has it). Every frame kind it can
  send and receive, checked byte for byte against the stdio bus ('-') on the server's side.
  Skipped, with the reason, when /usr/bin/python3 cannot import can.
- TestRawQuirks: a raw TCP socket plays the client and checks each quirk on the wire: `< hi >`
  and `< ok >` alone in their reads, commands split byte by byte, SavvyCAN's sign-extended
  bytes and bit-31 ids, python-can's unpadded ids, ID width and zero-length frames on output,
  control mode statistics, and bad input answered or closed with a named reason.
- TestBeacon: `--beacon-to 127.0.0.1:PORT` sends socketcand's <CANBeacon> datagram listing
  every bus.

Usage: test_socketcand.py [--tcpcan PATH] [unittest names, e.g. TestRawQuirks]
"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import test_bridge
from test_bridge import BridgeTest, free_port, parse_stats
from test_buses import FdBus, FdProc

SYSTEM_PYTHON = "/usr/bin/python3"
FRAME_TIMEOUT = test_bridge.FRAME_TIMEOUT


def python_can_missing():
    """None when /usr/bin/python3 has python-can with its socketcand interface, else why not."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return SYSTEM_PYTHON + " not found"
    p = subprocess.run([SYSTEM_PYTHON, "-c", "import can.interfaces.socketcand"], capture_output=True, timeout=60)
    if p.returncode != 0:
        return SYSTEM_PYTHON + " cannot import can.interfaces.socketcand (Debian package python3-can): " + \
            p.stderr.decode(errors="replace").strip().splitlines()[-1]
    return None


# Runs in /usr/bin/python3: opens the bus, says "ready", sends, receives, prints what it got.
PYCAN_CLIENT = r'''
import json, sys, time
import can
args = json.loads(sys.argv[1])
bus = can.Bus(interface="socketcand", host="127.0.0.1", port=args["port"], channel=args["channel"])
print("ready", flush=True)
if args.get("wait_for_go"):
    sys.stdin.readline()
for m in args.get("send", []):
    bus.send(can.Message(arbitration_id=m["id"], is_extended_id=m["ext"], data=bytes.fromhex(m["data"]),
                         is_remote_frame=m.get("rtr", False), dlc=m.get("dlc"), is_fd=m.get("fd", False)))
received = []
deadline = time.monotonic() + args.get("timeout", 10)
while len(received) < args.get("expect", 0) and time.monotonic() < deadline:
    msg = bus.recv(timeout=0.1)
    if msg is not None:
        received.append({"id": msg.arbitration_id, "data": msg.data.hex().upper(), "ts": "%.6f" % msg.timestamp})
time.sleep(args.get("linger", 0))
bus.shutdown()
print(json.dumps(received), flush=True)
'''


class PythonCan:
    """One python-can socketcand client in /usr/bin/python3."""

    def __init__(self, testcase, port, channel, **args):
        args.update(port=port, channel=channel)
        self.err_path = os.path.join(testcase.tmpdir, "python-can-%d.err" % id(self))
        with open(self.err_path, "wb") as err:
            self.p = subprocess.Popen([SYSTEM_PYTHON, "-c", PYCAN_CLIENT, json.dumps(args)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=err)
        testcase.addCleanup(self.cleanup)

    def wait_ready(self):
        line = self.p.stdout.readline()
        return line.strip() == b"ready"

    def go(self):
        self.p.stdin.write(b"go\n")
        self.p.stdin.flush()

    def result(self, timeout=30):
        out, _ = self.p.communicate(timeout=timeout)
        lines = out.decode(errors="replace").strip().splitlines()
        return json.loads(lines[-1]) if lines else None

    def err(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def cleanup(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=10)
        for f in (self.p.stdin, self.p.stdout):
            if f is not None:
                f.close()


class RawClient:
    """A socketcand client on a plain socket, reading message by message."""

    def __init__(self, testcase, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=FRAME_TIMEOUT)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""
        testcase.addCleanup(self.s.close)

    def send(self, text):
        self.s.sendall(text.encode() if isinstance(text, str) else text)

    def recv_once(self):
        """Exactly one recv(): what one read gives (python-can 4.1 compares this whole)."""
        assert not self.pending, "messages already buffered: %r" % self.pending
        return self.s.recv(4096)

    def messages(self, n):
        """The next n '< ... >' messages, however the reads cut them."""
        found = []
        deadline = time.monotonic() + FRAME_TIMEOUT
        while len(found) < n and time.monotonic() < deadline:
            while b">" in self.pending and len(found) < n:
                end = self.pending.index(b">") + 1
                found.append(self.pending[:end].decode(errors="replace"))
                self.pending = self.pending[end:]
            if len(found) < n:
                data = self.s.recv(4096)
                if not data:
                    break
                self.pending += data
        return found

    def at_eof(self):
        """True when the server closed the connection (after any bytes still on the way)."""
        deadline = time.monotonic() + FRAME_TIMEOUT
        while time.monotonic() < deadline:
            try:
                data = self.s.recv(4096)
            except ConnectionResetError:
                return True
            if not data:
                return True
            self.pending += data
        return False


class SocketcandTest(BridgeTest):
    def start_socketcand_server(self, extra=(), listen_suffix=""):
        port = free_port()
        args = ["server", "--can", "-", "--bind", "127.0.0.1",
                "--listen", "socketcand@127.0.0.1:%d%s" % (port, listen_suffix)] + list(extra)
        server = self.start("server", args)
        self.assertTrue(server.wait_err(r"listening on 127\.0\.0\.1:%d \(socketcand" % port),
                        "server did not listen" + self.logs())
        return server, port

    def raw_open(self, port, bus="-", mode="rawmode"):
        c = RawClient(self, port)
        self.assertEqual(c.recv_once(), b"< hi >", self.logs())
        c.send("< open %s >" % bus)
        self.assertEqual(c.recv_once(), b"< ok >", self.logs())
        c.send("< %s >" % mode)
        self.assertEqual(c.recv_once(), b"< ok >", self.logs())
        return c


# ---------------------------------------------------------------------------------------
class TestPythonCan(SocketcandTest):
    """python-can 4.1's socketcand interface against tcpcan server."""

    def setUp(self):
        super().setUp()
        why = python_can_missing()
        if why:
            self.skipTest(why)

    def test_python_can_sends_every_frame_kind_it_can(self):
        server, port = self.start_socketcand_server()
        sends = [
            {"id": 0x123, "ext": False, "data": "0102"},
            {"id": 0x7FF, "ext": False, "data": ""},                  # empty: "< send 7FF 0  >"
            {"id": 0x0, "ext": False, "data": "80FF7F00AA55CC33"},    # 8 bytes, bytes >= 0x80
            {"id": 0x1ABCDE0F, "ext": True, "data": "DEADBEEF"},      # extended, 8 digits
            {"id": 0x1234, "ext": True, "data": "01"},                # extended, unpadded "1234"
            {"id": 0x800, "ext": True, "data": ""},                   # above 0x7FF in 3 digits
            {"id": 0x5, "ext": False, "data": "AB"},                  # standard, unpadded "5"
            {"id": 0x10, "ext": True, "data": "11"},                  # extended 0x10: sent as "10" (see below)
            {"id": 0x321, "ext": False, "data": "", "rtr": True, "dlc": 4},  # RTR: refused, not sent
            {"id": 0x322, "ext": False, "data": "AA" * 12, "fd": True},     # FD: it cannot ask (< fdmode >)
        ]
        client = PythonCan(self, port, "-", send=sends, linger=0.5)
        self.assertTrue(client.wait_ready(), client.err() + self.logs())
        expected = ["123#0102", "7FF#", "000#80FF7F00AA55CC33", "1ABCDE0F#DEADBEEF", "00001234#01", "00000800#",
                    "005#AB",
                    # python-can 4.1 writes ids unpadded ({:X}): an extended id up to 0x7FF in 3 digits or
                    # fewer cannot be told from a standard one, so it reaches the bus standard.
                    "010#11"]
        self.wait_frames(server, expected)
        self.assertEqual(client.result(), [], client.err())
        self.assertTrue(server.wait_err(r"send refused: length does not match the number of data bytes"),
                        self.logs())
        self.assertTrue(server.wait_err(r"send refused: more than 8 data bytes"), self.logs())
        (stats,) = self.stop(server)
        self.assertEqual(stats["to_bus"], len(expected), self.logs())

    def test_python_can_receives_what_the_bus_carries(self):
        server, port = self.start_socketcand_server()
        client = PythonCan(self, port, "-", expect=6, timeout=FRAME_TIMEOUT)
        self.assertTrue(client.wait_ready(), client.err() + self.logs())
        server.send([
            "(1700000000.000001) can0 123#1122",
            "(1700000000.250000) can0 1ABCDE0F#0102030405060708",
            "(1700000001.000000) can0 7FF#",                          # empty: "< frame 7FF 1700000001.000000  >"
            "(1700000002.000000) can0 321#R4",                        # RTR: dropped and counted
            "(1700000003.000000) can0 456##1" + "AA" * 12,           # CAN FD, not asked for: dropped
            "(1700000004.000000) can0 20000004#0000000000000000",     # error frame: < error 004 ... >, skipped by 4.1
            "(1700000005.000000) can0 00000005#FF",
            "(1700000006.123456) can0 000#00",
            "(1700000007.000000) can0 555#5555555555555555",
        ])
        got = client.result()
        self.assertEqual(got, [
            {"id": 0x123, "data": "1122", "ts": "1700000000.000001"},
            {"id": 0x1ABCDE0F, "data": "0102030405060708", "ts": "1700000000.250000"},
            {"id": 0x7FF, "data": "", "ts": "1700000001.000000"},
            {"id": 0x5, "data": "FF", "ts": "1700000005.000000"},
            {"id": 0x0, "data": "00", "ts": "1700000006.123456"},
            {"id": 0x555, "data": "5555555555555555", "ts": "1700000007.000000"},
        ], client.err() + self.logs())
        (stats,) = self.stop(server)
        self.assertEqual(stats["sent"], 7, self.logs())  # 6 frames and the error frame
        self.assertEqual(stats["dropped"], 2, self.logs())  # RTR and FD

    def test_two_python_can_clients_hear_each_other_and_the_bus(self):
        server, port = self.start_socketcand_server()
        listener = PythonCan(self, port, "-", expect=2, timeout=FRAME_TIMEOUT)
        self.assertTrue(listener.wait_ready(), listener.err() + self.logs())
        talker = PythonCan(self, port, "-", send=[{"id": 0x42, "ext": False, "data": "4242"}], linger=0.5,
                           wait_for_go=True)
        self.assertTrue(talker.wait_ready(), talker.err() + self.logs())
        talker.go()
        self.wait_frames(server, ["042#4242"])
        server.send(["(1700000000.000000) can0 043#43"])
        got = listener.result()
        self.assertEqual([(m["id"], m["data"]) for m in got], [(0x42, "4242"), (0x43, "43")],
                         listener.err() + self.logs())
        self.assertEqual(talker.result(), [])

    def test_python_can_connects_while_the_bus_is_busy(self):
        """The `< ok >` after `< rawmode >` must reach python-can alone while frames flow."""
        server, port = self.start_socketcand_server()
        stop = threading.Event()

        def feed():
            for i in range(6000):  # bounded: at most ~30 s; stops when the test ends
                if stop.is_set():
                    return
                try:
                    server.send(["(1700000000.000000) can0 100#%04X" % i])
                except (BrokenPipeError, ValueError):
                    return
                time.sleep(0.005)

        feeder = threading.Thread(target=feed)
        feeder.start()
        self.addCleanup(feeder.join)
        self.addCleanup(stop.set)
        for attempt in range(3):
            client = PythonCan(self, port, "-", expect=5, timeout=FRAME_TIMEOUT)
            self.assertTrue(client.wait_ready(), "attempt %d: %s%s" % (attempt, client.err(), self.logs()))
            got = client.result()
            self.assertEqual(len(got), 5, client.err())
            self.assertTrue(all(m["id"] == 0x100 for m in got), got)
        stop.set()

    def test_python_can_picks_the_second_bus_by_name(self):
        bus = FdBus(self, "bus2")
        port = free_port()
        server = FdProc(self, "server", ["server", "--can", "-", "--can", bus.spec, "--bind", "127.0.0.1",
                                         "--listen", "socketcand@127.0.0.1:%d" % port], bus)
        self.procs.append(server)
        self.assertTrue(server.wait_err(r"listening on"), self.logs())
        self.assertIn("buses '-', '%s' by name" % bus.spec, server.err())
        client = PythonCan(self, port, bus.spec, send=[{"id": 0x222, "ext": False, "data": "22"}], expect=1,
                           timeout=FRAME_TIMEOUT)
        self.assertTrue(client.wait_ready(), client.err() + self.logs())
        self.assertEqual(bus.wait_frames(1), ["222#22"], self.logs())
        server.send(["(1700000000.000000) can0 111#11"])   # bus '-': must not reach this client
        bus.send(["(1700000000.500000) can0 333#33"])
        got = client.result()
        self.assertEqual(got, [{"id": 0x333, "data": "33", "ts": "1700000000.500000"}], client.err() + self.logs())
        self.assertEqual(server.frames(), [], self.logs())


# ---------------------------------------------------------------------------------------
class TestRawQuirks(SocketcandTest):
    """Each quirk of the notes, on the wire."""

    def test_hi_and_each_ok_come_alone_even_while_frames_flow(self):
        server, port = self.start_socketcand_server()
        stop = threading.Event()

        def feed():
            for i in range(5000):  # bounded: at most ~10 s; stops when the test ends
                if stop.is_set():
                    return
                try:
                    server.send(["(1700000000.000000) can0 7%02X#01" % (i % 256)])
                except (BrokenPipeError, ValueError):
                    return
                time.sleep(0.002)

        feeder = threading.Thread(target=feed)
        feeder.start()
        self.addCleanup(feeder.join)
        self.addCleanup(stop.set)
        c = self.raw_open(port)  # asserts each reply is a read of its own
        first = c.messages(1)
        self.assertRegex(first[0], r"^< frame 7[0-9A-F]{2} 1700000000\.000000 01 >$")
        stop.set()

    def test_nothing_follows_an_ok_in_the_same_read(self):
        """Commands that arrive together: the `< ok >` still leaves alone, what follows waits.
        A hold of 500 ms instead of 30 keeps the test from depending on how fast it runs."""
        server, port = self.start_socketcand_server(["--socketcand-ok-hold", "500"])
        c = RawClient(self, port)
        self.assertEqual(c.recv_once(), b"< hi >")
        c.send("< open - >< echo >")
        self.assertEqual(c.recv_once(), b"< ok >", self.logs())
        self.assertEqual(c.recv_once(), b"< echo >", self.logs())
        c.send("< rawmode >< echo >< fdmode >< echo >")
        self.assertEqual(c.recv_once(), b"< ok >", self.logs())
        self.assertEqual(c.recv_once(), b"< echo >< ok >", self.logs())
        self.assertEqual(c.recv_once(), b"< echo >", self.logs())

    def test_commands_split_byte_by_byte(self):
        server, port = self.start_socketcand_server()
        c = RawClient(self, port)
        self.assertEqual(c.recv_once(), b"< hi >")
        for ch in "< open - >":
            c.send(ch)
            time.sleep(0.002)
        self.assertEqual(c.messages(1), ["< ok >"])
        for ch in "  < rawmode >< send 123 2 ab cd >":
            c.send(ch)
            time.sleep(0.002)
        self.assertEqual(c.messages(1), ["< ok >"])
        self.wait_frames(server, ["123#ABCD"])

    def test_savvycan_sign_extended_bytes_and_bit_31_ids(self):
        server, port = self.start_socketcand_server()
        c = self.raw_open(port)
        c.send("< send 80000123 3 ffffff80 7f ffffffff >< send 9abcdef0 1 ffffffc3 >< send 7e8 2 2 3 >")
        self.wait_frames(server, ["00000123#807FFF", "1ABCDEF0#C3", "7E8#0203"])

    def test_unpadded_ids_and_hex_lengths(self):
        server, port = self.start_socketcand_server()
        c = self.raw_open(port)
        c.send("< send 5 0  >< send 1234 1 a >< send 800 0 >< send 7FF 8 1 2 3 4 5 6 7 8 >")
        self.wait_frames(server, ["005#", "00001234#0A", "00000800#", "7FF#0102030405060708"])

    def test_output_id_width_and_zero_length_frames(self):
        server, port = self.start_socketcand_server()
        c = self.raw_open(port)
        server.send(["(1700000000.000001) can0 005#01", "(1700000000.000002) can0 00000005#01",
                     "(1.000000) can0 123#", "(1700000000.000003) can0 1FFFFFFF#FFEE"])
        self.assertEqual(c.messages(4), [
            "< frame 005 1700000000.000001 01 >",
            "< frame 00000005 1700000000.000002 01 >",
            "< frame 123 1.000000  >",
            "< frame 1FFFFFFF 1700000000.000003 FFEE >",
        ], self.logs())

    def test_fdmode_carries_can_fd_both_ways(self):
        server, port = self.start_socketcand_server()
        c = self.raw_open(port)
        c.send("< fdmode >")
        self.assertEqual(c.messages(1), ["< ok >"])
        server.send(["(2.000000) can0 456##1" + "AB" * 12])
        self.assertEqual(c.messages(1), ["< frame 456 2.000000 " + "AB" * 12 + " >"], self.logs())
        c.send("< send 123 C " + " ".join(["cd"] * 12) + " >< send 124 20 " + " ".join(["ef"] * 32) + " >")
        self.wait_frames(server, ["123##4" + "CD" * 12, "124##4" + "EF" * 32])

    def test_control_mode_statistics(self):
        server, port = self.start_socketcand_server()
        c = self.raw_open(port, mode="controlmode")
        c.send("< send 123 2 1 2 >")
        self.wait_frames(server, ["123#0102"])
        c.send("< statistics 100 >")
        stats = c.messages(2)
        self.assertEqual(stats, ["< stat 0 0 2 1 >", "< stat 0 0 2 1 >"], self.logs())
        c.send("< echo >< statistics 0 >< rawmode >")
        got = c.messages(2)
        while got and got[0].startswith("< stat"):  # one may have left before the echo was read
            got = got[1:] + c.messages(1)
        self.assertEqual(got, ["< echo >", "< ok >"])

    def test_unknown_and_unsupported_commands_are_answered_and_the_connection_goes_on(self):
        server, port = self.start_socketcand_server()
        c = self.raw_open(port)
        c.send("< dance >< bcmmode >< subscribe 0 0 123 >< isotpmode >< sendrtr 123 0 >"
               "< send 123 9 1 2 3 4 5 6 7 8 9 >< send 12G 0 >< send 123 2 11 >< echo >")
        self.assertEqual(c.messages(9), [
            "< error unknown command >",
            "< error bcm mode is not supported by this server, use rawmode >",
            "< error bcm mode is not supported by this server, use rawmode >",
            "< error isotp mode is not supported by this server >",
            "< error remote frames are not supported >",
            "< error more than 8 data bytes (CAN FD needs the fdmode command first) >",
            "< error identifier is not hex >",
            "< error length does not match the number of data bytes >",
            "< echo >",
        ], self.logs())
        c.send("< send 321 1 99 >")
        self.wait_frames(server, ["321#99"])
        self.assertIn("unknown command 'dance'", server.err())
        self.assertIn("send refused: identifier is not hex", server.err())

    def test_the_stdio_bus_also_answers_to_its_interface_name(self):
        server, port = self.start_socketcand_server()
        c = self.raw_open(port, bus="tcpcan")  # the name its candump lines carry
        c.send("< send 7 0 >")
        self.wait_frames(server, ["007#"])

    def test_unknown_bus_is_refused_and_closed(self):
        server, port = self.start_socketcand_server()
        c = RawClient(self, port)
        self.assertEqual(c.recv_once(), b"< hi >")
        c.send("< open can9 >")
        self.assertEqual(c.messages(1), ["< error could not open bus >"])
        self.assertTrue(c.at_eof(), self.logs())
        self.assertTrue(server.wait_err(r"asked for bus 'can9', which this server does not serve"), self.logs())

    def test_a_client_that_opens_no_bus_is_closed_after_the_negotiation_timeout(self):
        server, port = self.start_socketcand_server(["--negotiation-timeout", "1"])
        c = RawClient(self, port)
        self.assertEqual(c.recv_once(), b"< hi >")
        self.assertEqual(c.messages(1), ["< error no bus opened in time >"], self.logs())
        self.assertTrue(c.at_eof(), self.logs())
        self.assertTrue(server.wait_err(r"no < open BUS > within 1\.0 s"), self.logs())

    def test_text_outside_a_message_closes_with_a_reason(self):
        server, port = self.start_socketcand_server()
        c = self.raw_open(port)
        c.send("< echo >GET / HTTP/1.1\r\n")
        self.assertEqual(c.messages(2), ["< echo >", "< error text outside the angle brackets of a message >"])
        self.assertTrue(c.at_eof(), self.logs())
        self.assertTrue(server.wait_err(r"protocol error: text outside the angle brackets of a message at byte 29 "
                                        r"of the stream; closing"), self.logs())
        other = self.raw_open(port)  # the server goes on
        other.send("< echo >")
        self.assertEqual(other.messages(1), ["< echo >"])

    def test_overlong_message_closes_with_a_reason(self):
        server, port = self.start_socketcand_server()
        c = self.raw_open(port)
        try:
            c.send("< send " + "1" * 9000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertTrue(c.at_eof(), self.logs())
        self.assertTrue(server.wait_err(r"message longer than 8290 bytes"), self.logs())

    def test_listener_tied_to_a_bus_opens_that_bus_only(self):
        bus = FdBus(self, "bus2")
        port = free_port()
        server = FdProc(self, "server", ["server", "--can", "-", "--can", bus.spec, "--bind", "127.0.0.1",
                                         "--listen", "socketcand@127.0.0.1:%d:%s" % (port, bus.spec)], bus)
        self.procs.append(server)
        self.assertTrue(server.wait_err(r"listening on"), self.logs())
        c = RawClient(self, port)
        self.assertEqual(c.recv_once(), b"< hi >")
        c.send("< open - >")  # a bus of the server, but not this listener's
        self.assertEqual(c.messages(1), ["< error could not open bus >"])
        self.assertTrue(c.at_eof())
        ok = self.raw_open(port, bus.spec)
        ok.send("< send 2 1 22 >")
        self.assertEqual(bus.wait_frames(1), ["002#22"], self.logs())


# ---------------------------------------------------------------------------------------
class TestBeacon(SocketcandTest):
    """socketcand's discovery beacon, sent only to 127.0.0.1 here."""

    def test_beacon_lists_every_bus(self):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(rx.close)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(FRAME_TIMEOUT)
        beacon_port = rx.getsockname()[1]
        bus = FdBus(self, "bus2")
        port = free_port()
        server = FdProc(self, "server", ["server", "--can", "-", "--can", bus.spec, "--bind", "127.0.0.1",
                                         "--listen", "socketcand@127.0.0.1:%d" % port,
                                         "--beacon-to", "127.0.0.1:%d" % beacon_port], bus)
        self.procs.append(server)
        self.assertTrue(server.wait_err(r"listening on"), self.logs())
        data, _ = rx.recvfrom(65536)
        text = data.decode()
        m = re.match(r'^<CANBeacon name="([^"]+)" type="SocketCAN" description="([^"]*)">\n'
                     r'<URL>can://127\.0\.0\.1:(\d+)</URL>(.*)</CANBeacon>$', text)
        self.assertIsNotNone(m, text)
        self.assertEqual(m.group(1), socket.gethostname())
        self.assertTrue(m.group(2).startswith("tcpcan "), m.group(2))
        self.assertEqual(int(m.group(3)), port)
        self.assertEqual(m.group(4), '<Bus name="-"/><Bus name="%s"/>' % bus.spec)
        self.assertTrue(server.wait_err(r"beacon every 3 s to 127\.0\.0\.1:%d" % beacon_port), self.logs())

    def test_beacon_without_a_socketcand_listener_is_a_usage_error(self):
        p = subprocess.run([test_bridge.TCPCAN, "server", "--can", "-", "--bind", "127.0.0.1", "--port",
                            str(free_port()), "--beacon"], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"--beacon announces a socketcand listener", p.stderr)

    def test_bad_beacon_address_is_a_usage_error(self):
        p = subprocess.run([test_bridge.TCPCAN, "server", "--can", "-", "--listen", "socketcand@127.0.0.1:%d" %
                            free_port(), "--beacon-to", "nowhere:x"], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"--beacon-to", p.stderr)


def main(argv):
    return test_bridge.run_tests(__name__, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Integration tests: one tcpcan server serving several buses (--can repeated), listeners
tied to a bus (--listen DIALECT@[ADDR:]PORT[:BUS]), a client choosing its bus by name
(--remote-bus, tcpcan's bus request), and the per-bus statistics.

A process has one stdin and one stdout, so the second bus is a text bus on two other
descriptors: `--can fd:IN,OUT` reads candump lines from IN (a pipe we write) and writes
them to OUT (a file we read), exactly as '-' does with stdin and stdout.

Usage: test_buses.py [--tcpcan PATH] [unittest names, e.g. TestBuses]
"""
import os
import re
import socket
import struct
import subprocess
import sys
import time

import test_bridge
from test_bridge import LINE_RE, BridgeTest, Proc, free_port, parse_stats

START_TIMEOUT = test_bridge.START_TIMEOUT


class FdBus:
    """The second bus of a server: a pipe for its input, a file for its output."""

    def __init__(self, testcase, name):
        self.read_end, self.write_end = os.pipe()
        self.out_path = os.path.join(testcase.tmpdir, name + ".out")
        self.out_fd = os.open(self.out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.spec = "fd:%d,%d" % (self.read_end, self.out_fd)
        testcase.addCleanup(self.close)

    def after_start(self):
        """The child has its own copies: ours of the read end and of the file go."""
        for fd in (self.read_end, self.out_fd):
            os.close(fd)
        self.read_end = self.out_fd = -1

    def send(self, lines):
        os.write(self.write_end, "".join(line + "\n" for line in lines).encode())

    def frames(self):
        with open(self.out_path, "rb") as f:
            lines = f.read().decode(errors="replace").split("\n")[:-1]
        result = []
        for line in lines:
            m = LINE_RE.match(line)
            result.append(m.group(3) if m else "BAD LINE: " + line)
        return result

    def wait_frames(self, n, timeout=test_bridge.FRAME_TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self.frames()) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.frames()

    def close(self):
        for fd in (self.read_end, self.write_end, self.out_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.read_end = self.write_end = self.out_fd = -1


class FdProc(Proc):
    """A tcpcan process that inherits the descriptors of an FdBus."""

    def __init__(self, testcase, name, args, bus):
        self.name = name
        self.args = list(args)
        self.out_path = os.path.join(testcase.tmpdir, name + ".out")
        self.err_path = os.path.join(testcase.tmpdir, name + ".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.p = subprocess.Popen([test_bridge.TCPCAN] + self.args, stdin=subprocess.PIPE, stdout=out,
                                      stderr=err, pass_fds=(bus.read_end, bus.out_fd))
        bus.after_start()
        testcase.addCleanup(self.cleanup)


class BusTest(BridgeTest):
    def start_two_bus_server(self, listens, extra=()):
        """A server on stdin/stdout ('-', the first bus) and an FdBus (the second); `listens`
        are --listen values where BUS2 stands for the second bus's name."""
        bus = FdBus(self, "bus2")
        args = ["server", "--can", "-", "--can", bus.spec, "--bind", "127.0.0.1"]
        for listen in listens:
            args += ["--listen", listen.replace("BUS2", bus.spec)]
        args += list(extra)
        server = FdProc(self, "server", args, bus)
        self.procs.append(server)
        self.assertTrue(server.wait_err(r"listening on", count=len(listens)), "server did not listen" + self.logs())
        return server, bus


class TestBuses(BusTest):
    """Frames stay on their bus: two buses, a client tied to each."""

    def test_frames_never_cross_buses(self):
        port_a, port_b = free_port(), free_port()
        server, bus2 = self.start_two_bus_server(
            ["tcpcan@127.0.0.1:%d:-" % port_a, "tcpcan@127.0.0.1:%d:BUS2" % port_b], ["--stats", "0.2"])
        self.assertIn("listening on 127.0.0.1:%d (bus -," % port_a, server.err())
        self.assertIn("listening on 127.0.0.1:%d (bus %s," % (port_b, bus2.spec), server.err())
        a = self.start_client(port_a, name="client-a")
        b = self.start_client(port_b, name="client-b")
        a2 = self.start_client(port_a, name="client-a2")

        a.send(["100#A1", "101#A2"])  # client on bus '-': its bus and its bus's other client
        b.send(["200#B1"])            # client on bus 2: bus 2 only
        server.send(["300#C1"])       # bus '-' itself: its clients only
        bus2.send(["400#D1", "401#D2"])  # bus 2 itself: its client only

        self.wait_frames(server, ["100#A1", "101#A2"])
        self.assertEqual(bus2.wait_frames(1), ["200#B1"], self.logs())
        self.wait_frames(a, ["300#C1"])
        self.assertEqual(sorted(a2.wait_lines(3)), ["100#A1", "101#A2", "300#C1"], self.logs())
        self.wait_frames(b, ["400#D1", "401#D2"])
        # Per-bus statistics, while running: one line per bus.
        self.assertTrue(server.wait_err(r"stats for bus -: from_bus=1 to_bus=2 .*peers=2 "), self.logs())
        self.assertTrue(server.wait_err(r"stats for bus %s: from_bus=2 to_bus=1 .*peers=1 " % re.escape(bus2.spec)),
                        self.logs())

        s_stats, _, _, _ = self.stop(server, a, b, a2)
        # Nothing else arrived anywhere, after everyone stopped.
        self.assertEqual(server.frames(), ["100#A1", "101#A2"], self.logs())
        self.assertEqual(bus2.frames(), ["200#B1"], self.logs())
        self.assertEqual(a.frames(), ["300#C1"], self.logs())
        self.assertEqual(b.frames(), ["400#D1", "401#D2"], self.logs())
        self.assertEqual(sorted(a2.frames()), ["100#A1", "101#A2", "300#C1"], self.logs())
        # The totals line sums the buses.
        self.assertEqual(s_stats["from_bus"], 3, self.logs())
        self.assertEqual(s_stats["to_bus"], 3, self.logs())
        per_bus = parse_stats(server.err(), "final stats for bus -")
        self.assertEqual((per_bus["from_bus"], per_bus["to_bus"]), (1, 2), self.logs())

    def test_an_untied_tcpcan_listener_serves_the_first_bus(self):
        port = free_port()
        server, bus2 = self.start_two_bus_server(["tcpcan@127.0.0.1:%d" % port])
        self.assertIn("buses '-', '%s' by name" % bus2.spec, server.err())
        c = self.start_client(port)
        c.send(["123#01"])
        bus2.send(["456#02"])
        server.send(["789#03"])
        self.wait_frames(server, ["123#01"])
        self.wait_frames(c, ["789#03"])
        self.stop(server, c)
        self.assertEqual(bus2.frames(), [], self.logs())
        self.assertEqual(c.frames(), ["789#03"], self.logs())

    def test_listeners_on_two_addresses_serve_one_bus(self):
        port_v4, port_v6 = free_port(), free_port()
        server = self.start(
            "server", ["server", "--can", "-", "--listen", "tcpcan@127.0.0.1:%d" % port_v4,
                       "--listen", "tcpcan@[::1]:%d" % port_v6])
        self.assertTrue(server.wait_err(r"listening on", count=2), self.logs())
        self.assertIn("listening on 127.0.0.1:%d (bus tcpcan," % port_v4, server.err())
        self.assertIn("listening on [::1]:%d (bus tcpcan," % port_v6, server.err())
        v4 = self.start_client(port_v4, name="v4")
        v6 = self.start_client(port_v6, name="v6", host="::1")
        server.send(["123#01"])
        self.wait_frames(v4, ["123#01"])
        self.wait_frames(v6, ["123#01"])
        v6.send(["456#02"])
        self.wait_frames(server, ["456#02"])
        self.wait_frames(v4, ["123#01", "456#02"])
        self.stop(server, v4, v6)

    def test_one_bus_logs_and_counts_as_before(self):
        port = free_port()
        server = self.start_server(port, ["--stats", "0.2"])
        # The stdio bus is named as before: its candump interface word.
        self.assertIn("listening on 127.0.0.1:%d (bus tcpcan, protocol version 1 to 2" % port, server.err())
        self.assertTrue(server.wait_err(r"\bstats: from_bus=0 "), self.logs())
        self.stop(server)
        self.assertNotIn("for bus", server.err(), self.logs())


class TestBusRequest(BusTest):
    """tcpcan's bus request (--remote-bus, PROTOCOL.md 4.7): a client joins a bus by name."""

    def test_clients_choose_their_bus_by_name(self):
        port = free_port()
        server, bus2 = self.start_two_bus_server(["tcpcan@127.0.0.1:%d" % port])
        on_first = self.start_client(port, ["--remote-bus", "-"], name="on-first")
        on_second = self.start_client(port, ["--remote-bus", bus2.spec], name="on-second")
        default = self.start_client(port, name="default")  # names none: the first bus
        for c, bus in ((on_first, "-"), (on_second, bus2.spec)):
            self.assertTrue(c.wait_err(r"on bus '%s'" % re.escape(bus)), self.logs())
        self.assertTrue(server.wait_err(r"on bus '%s'" % re.escape(bus2.spec)), self.logs())
        self.assertIn("features agreed: seq,bus", on_second.err())
        self.assertIn("features agreed: seq\n" if False else "features agreed: seq", default.err())

        on_second.send(["222#02"])
        bus2.send(["333#03"])
        on_first.send(["111#01"])
        server.send(["444#04"])
        self.wait_frames(server, ["111#01"])
        self.assertEqual(bus2.wait_frames(1), ["222#02"], self.logs())
        self.wait_frames(on_second, ["333#03"])
        self.assertEqual(sorted(on_first.wait_lines(1)), ["444#04"], self.logs())
        self.assertEqual(sorted(default.wait_lines(2)), ["111#01", "444#04"], self.logs())
        self.stop(server, on_first, on_second, default)
        self.assertEqual(server.frames(), ["111#01"], self.logs())
        self.assertEqual(bus2.frames(), ["222#02"], self.logs())
        self.assertEqual(on_second.frames(), ["333#03"], self.logs())
        self.assertEqual(on_first.frames(), ["444#04"], self.logs())
        self.assertEqual(sorted(default.frames()), ["111#01", "444#04"], self.logs())
        # A client that names no bus sees the same 'h' as before: no BUS in its features.
        self.assertNotIn("seq,bus", default.err())

    def test_an_unknown_bus_is_refused_with_its_name(self):
        port = free_port()
        server, bus2 = self.start_two_bus_server(["tcpcan@127.0.0.1:%d" % port])
        c = self.start_client(port, ["--remote-bus", "can7", "--no-retry"], version=None)
        self.assertEqual(c.wait(), 1, self.logs())
        self.assertRegex(c.err(), r"closed by peer: unsupported request \(unknown bus 'can7' \(buses: - %s\)\)"
                         % re.escape(bus2.spec))
        self.assertTrue(server.wait_err(r"asked for bus 'can7', which this server does not serve"), self.logs())
        # The server is unharmed: another client still joins.
        other = self.start_client(port, ["--remote-bus", bus2.spec], name="other")
        bus2.send(["123#45"])
        self.wait_frames(other, ["123#45"])
        self.stop(server, other)

    def test_a_raw_client_gets_the_answer_bytes(self):
        port = free_port()
        server, bus2 = self.start_two_bus_server(["tcpcan@127.0.0.1:%d" % port])
        name = bus2.spec.encode()
        with socket.create_connection(("127.0.0.1", port), timeout=START_TIMEOUT) as s:
            s.sendall(bytes.fromhex("76 04 00 00 00 02 68 04 00 00 00 08") + b"b" + bytes([len(name)]) + name)
            got = b""
            # The server offers SEQ, RESUME and BUS (0x0D); only BUS is agreed with this client.
            want = bytes.fromhex("76 04 00 00 00 02 68 04 00 00 00 0D") + b"b" + bytes([len(name)]) + name
            deadline = time.monotonic() + START_TIMEOUT
            while len(got) < len(want) and time.monotonic() < deadline:
                got += s.recv(len(want) - len(got))
            self.assertEqual(got, want, self.logs())
            # A frame on bus 2 reaches this client (no SEQ agreed: plain 'f').
            bus2.send(["321#AB"])
            frame = b""
            while len(frame) < 9 and time.monotonic() < deadline:
                frame += s.recv(9 - len(frame))
            self.assertEqual(frame, bytes.fromhex("66 07 00 00 00 03 21 01 AB"), self.logs())
        self.stop(server)

    def test_a_one_bus_server_does_not_offer_it_and_the_client_says_so(self):
        port = free_port()
        server = self.start_server(port)
        c = self.start_client(port, ["--remote-bus", "can1", "--no-retry"], version=None)
        self.assertEqual(c.wait(), 1, self.logs())
        self.assertIn("the server does not serve buses by name", c.err())
        self.assertTrue(server.wait_err(r"closed by peer: unsupported request \(a bus request, which the server does "
                                        r"not offer\)"), self.logs())
        self.stop(server)


class TestBusCommandLine(BusTest):
    """Wrong bus options are usage errors (exit 2) that name what is wrong."""

    def usage_error(self, args, says):
        p = subprocess.run([test_bridge.TCPCAN] + args, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        text = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 2, " ".join(args) + ": " + text)
        self.assertIn(says, text, " ".join(args))

    def test_errors(self):
        self.usage_error(["server", "--can", "-", "--can", "-"], "stdio ('-') is one bus; give it once")
        self.usage_error(["server", "--can", "vcan0", "--can", "vcan0"], "bus 'vcan0' given twice")
        self.usage_error(["client", "--can", "-", "--can", "vcan0", "--host", "h"], "a client carries one bus")
        self.usage_error(["server", "--can", "-", "--listen", "tcpcan@5000:can1"], "no bus 'can1' (--can gives -)")
        self.usage_error(["client", "--can", "-", "--host", "h", "--dialect", "socketcand"],
                         "the socketcand dialect is served")
        self.usage_error(["server", "--can", "-", "--listen", "tcpcan5000"], "no '@' after the dialect")
        self.usage_error(["server", "--can", "-", "--remote-bus", "x"], "--remote-bus is for clients")
        self.usage_error(["server", "--can", "-", "--port", "5000", "--listen", "tcpcan@5001"],
                         "add --listen tcpcan@5000")
        self.usage_error(["client", "--can", "-", "--host", "h", "--listen", "tcpcan@1"], "--listen is for servers")
        self.usage_error(["client", "--can", "-", "--host", "h", "--dialect", "klingon"], "unknown dialect")
        self.usage_error(["client", "--can", "-", "--host", "h", "--remote-bus", "can 1"], "no spaces")
        self.usage_error(["client", "--can", "-", "--host", "h", "--remote-bus", "x", "--protocol-version", "1"],
                         "needs protocol version 2")

    def test_a_bad_descriptor_bus_is_refused_at_start(self):
        p = subprocess.run([test_bridge.TCPCAN, "server", "--can", "fd:97,98", "--bind", "127.0.0.1", "--port",
                            str(free_port())], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"--can fd:97,98: descriptor 97 is not open", p.stderr)
        p = subprocess.run([test_bridge.TCPCAN, "server", "--can", "fd:3", "--bind", "127.0.0.1", "--port",
                            str(free_port())], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"expected fd:IN,OUT", p.stderr)


def main(argv):
    return test_bridge.run_tests(__name__, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Integration tests: canip_peer 4.1 (and 4.0) against the tcpcan program, both roles.

The canip peers here are written from canip_peer's documented wire format (README
"canip_peer", the notes on its source), not from our implementation: each side sends one
line `CANIP/4.1[ FEAT=SEQ[,TS]]\\n` at once and reads the other's within 2 s (a line that
is not a hello, or none, means 4.0); frames are flags u8 (bit 0 = extended), dlc u8,
can_id u32 little-endian, 8 data bytes zero-padded, + seq u32 BE (SEQ), + µs u64 BE (TS).
Bytes on the wire are checked against the stdio bus ('-') on our side.

Usage: test_canip.py [--tcpcan PATH] [unittest names, e.g. TestCanipServer]
"""
import re
import socket
import struct
import sys
import threading
import time

import test_bridge
from test_bridge import BridgeTest, free_port, parse_stats
from test_buses import BusTest

SEQ, TS = 1, 2
WAIT = 10.0  # s: the most any expected event may take (a deadline, not a measurement)


def hello(features):
    names = [n for bit, n in ((SEQ, "SEQ"), (TS, "TS")) if features & bit]
    return b"CANIP/4.1" + ((b" FEAT=" + ",".join(names).encode()) if names else b"") + b"\n"


def frame_size(features):
    return 14 + (4 if features & SEQ else 0) + (8 if features & TS else 0)


def encode(can_id, data, extended=False, seq=None, ts=None):
    out = bytes([1 if extended else 0, len(data)]) + struct.pack("<I", can_id) + bytes(data).ljust(8, b"\0")
    if seq is not None:
        out += struct.pack(">I", seq)
    if ts is not None:
        out += struct.pack(">Q", ts)
    return out


def decode_all(data, features):
    """[(can_id, extended, data, seq, ts, padding)] of whole frames in `data`."""
    size = frame_size(features)
    frames = []
    for at in range(0, len(data) - size + 1, size):
        f = data[at:at + size]
        dlc = f[1]
        seq = struct.unpack(">I", f[14:18])[0] if features & SEQ else None
        ts_at = 18 if features & SEQ else 14
        ts = struct.unpack(">Q", f[ts_at:ts_at + 8])[0] if features & TS else None
        frames.append((struct.unpack("<I", f[2:6])[0], bool(f[0] & 1), f[6:6 + dlc], seq, ts, f[6 + dlc:14], f[0]))
    return frames


def as_line(can_id, extended, data):
    """The ID#DATA form our stdio bus prints."""
    return ("%08X" if extended else "%03X") % can_id + "#" + data.hex().upper()


def recv_until(sock, n, timeout=WAIT):
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < n and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


def read_line(sock, timeout=2.0):
    """As canip_peer's readline with its 2 s wait: bytes up to '\\n', or None at the deadline."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n") and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1)
        except socket.timeout:
            break
        if not chunk:
            return data
        data += chunk
    return data if data.endswith(b"\n") else None


def parse_hello(line):
    """canip_peer's reading of a line: features, or None for a 4.0 peer."""
    if line is None or not line.startswith(b"CANIP/4.1"):
        return None
    feats = 0
    for word in line.rstrip(b"\r\n").split()[1:]:
        if word.startswith(b"FEAT="):
            for tag in word[5:].split(b","):
                feats |= {b"SEQ": SEQ, b"TS": TS}.get(tag.strip().upper(), 0)
    return feats


def eof_within(sock, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if not chunk:
            return True
    return False


class FakeCanipServer:
    """A canip_peer server for one client: greets after `greet_delay` s (at once as
    canip_peer does, or late as over a slow link), reads the client's line within 2 s, and
    from then on runs the agreed framing; or a 4.0 server (no hello) that sends `first`
    frames at once."""

    def __init__(self, features=SEQ, greet_delay=0.0, legacy=False, first=b""):
        self.features, self.greet_delay, self.legacy, self.first = features, greet_delay, legacy, first
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.conn = None
        self.client_line = None
        self.agreed = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.listener.settimeout(WAIT)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.conn = conn
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.legacy:
            conn.sendall(self.first)
            self.agreed = 0
        else:
            time.sleep(self.greet_delay)
            conn.sendall(hello(self.features))
            self.client_line = read_line(conn)
            peer = parse_hello(self.client_line)
            self.agreed = 0 if peer is None else self.features & peer
        self.ready.set()

    def close(self):
        for s in (self.conn, self.listener):
            if s is not None:
                s.close()


class CanipTest(BridgeTest):
    def canip_client(self, port, line=None, nodelay=True):
        s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.addCleanup(s.close)
        if nodelay:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if line is not None:
            s.sendall(line)
        return s

    def server_hello(self, sock, expect):
        line = read_line(sock)
        self.assertEqual(line, expect, "the server's hello" + self.logs())

    def assert_frames_on_wire(self, sock, features, expected, first_seq=0, ts=None):
        """Reads len(expected) frames and checks every byte: flags, dlc, id, zero padding, seq, ts."""
        size = frame_size(features)
        data = recv_until(sock, size * len(expected))
        self.assertEqual(len(data), size * len(expected), "bytes from the server: %r%s" % (data, self.logs()))
        got = decode_all(data, features)
        for i, (f, want) in enumerate(zip(got, expected)):
            can_id, extended, payload, seq, stamp, padding, flags = f
            self.assertEqual(as_line(can_id, extended, payload), want, self.logs())
            self.assertIn(flags, (0, 1), self.logs())
            self.assertEqual(padding, b"\0" * len(padding), "data bytes past dlc must be zero" + self.logs())
            if features & SEQ:
                self.assertEqual(seq, first_seq + i, self.logs())
            if features & TS:
                if ts is not None and ts[i] is not None:
                    self.assertEqual(stamp, ts[i], self.logs())
                else:
                    self.assertLess(abs(stamp / 1e6 - time.time()), 60, "TS is not the wall clock" + self.logs())
        return got


# ---------------------------------------------------------------------------------------
class TestCanipServer(CanipTest):
    """canip_peer clients on `tcpcan server --can - --port P` (the canip_peer command line)."""

    def test_client_with_seq_and_ts(self):
        port = free_port()
        server = self.start_server(port, ["--timestamps"])
        s = self.canip_client(port, hello(SEQ | TS))
        self.server_hello(s, hello(SEQ | TS))
        self.assertTrue(server.wait_err(r"canip 4\.1 agreed, features SEQ,TS \(26-byte frames\)"), self.logs())
        # Towards the bus: a frame split across reads, one byte per segment.
        frames = [encode(0x123, b"\x11\x22", seq=0, ts=1700000000123456),
                  encode(0x18DAF110, bytes(range(8)), extended=True, seq=1, ts=1700000000223456),
                  encode(0x7FF, b"", seq=2, ts=1700000000323456)]
        for b in frames[0]:
            s.sendall(bytes([b]))
            time.sleep(0.001)
        s.sendall(frames[1] + frames[2])
        self.wait_frames(server, ["123#1122", "18DAF110#0001020304050607", "7FF#"])
        # The TS of each frame is its time on our stdio bus.
        stamps = [line.split()[0] for line in server.raw_lines()]
        self.assertEqual(stamps, ["(1700000000.123456)", "(1700000000.223456)", "(1700000000.323456)"], self.logs())
        # Towards the client: a capture time is the TS; otherwise our wall clock.
        server.send(["(1700000000.000001) can0 321#DEADBEEF", "1ABCDE0F#0102"])
        self.assert_frames_on_wire(s, SEQ | TS, ["321#DEADBEEF", "1ABCDE0F#0102"], ts=[1700000000000001, None])
        s_stats, = self.stop(server)
        self.assertEqual((s_stats["received"], s_stats["sent"], s_stats["lost"]), (3, 2, 0), self.logs())

    def test_client_without_features_and_intersection(self):
        port = free_port()
        server = self.start_server(port)  # SEQ on, TS off: the default, as canip_peer's
        plain = self.canip_client(port, hello(0))
        self.server_hello(plain, hello(SEQ))
        both = self.canip_client(port, hello(SEQ | TS))
        self.server_hello(both, hello(SEQ))
        self.assertTrue(server.wait_err(r"canip 4\.1 agreed, features none \(14-byte frames\)"), self.logs())
        self.assertTrue(server.wait_err(r"canip 4\.1 agreed, features SEQ \(18-byte frames\)"), self.logs())
        server.send(["0A0#01", "1FFFFFFF#FFFFFFFFFFFFFFFF"])
        self.assert_frames_on_wire(plain, 0, ["0A0#01", "1FFFFFFF#FFFFFFFFFFFFFFFF"])
        self.assert_frames_on_wire(both, SEQ, ["0A0#01", "1FFFFFFF#FFFFFFFFFFFFFFFF"])
        # One client's frame reaches the bus and the other client.
        plain.sendall(encode(0x42, b"\x42"))
        self.wait_frames(server, ["042#42"])
        self.assert_frames_on_wire(both, SEQ, ["042#42"], first_seq=2)
        self.stop(server)

    def test_legacy_client_without_hello(self):
        port = free_port()
        server = self.start_server(port)
        s = self.canip_client(port, encode(0x100, b"\x01\x02\x03", extended=False)[:5])
        s.sendall(encode(0x100, b"\x01\x02\x03")[5:] + encode(0x1234567, b"", extended=True))
        self.wait_frames(server, ["100#010203", "01234567#"])
        self.assertTrue(server.wait_err(r"canip 4\.0 \(no hello\)"), self.logs())
        server.send(["555#55"])
        data = recv_until(s, 14)
        self.assertEqual(data, encode(0x555, b"\x55"), "a 4.0 client gets 14-byte frames and no hello" + self.logs())
        self.stop(server)

    def test_frames_the_wire_cannot_carry_are_dropped_and_counted(self):
        port = free_port()
        server = self.start_server(port)
        s = self.canip_client(port, hello(SEQ))
        self.server_hello(s, hello(SEQ))
        self.assertTrue(server.wait_err(r"canip 4\.1 agreed"), self.logs())
        server.send(["123##1AABB", "7FF#R4", "20000080#0000000000000000", "124#01"])
        self.assert_frames_on_wire(s, SEQ, ["124#01"])
        self.assertTrue(server.wait_err(r"3 frames dropped so far \(towards canip peer: CAN FD 1, remote 1, error "
                                        r"frames 1"), self.logs())
        s_stats, = self.stop(server)
        self.assertEqual(s_stats["dropped"], 3, self.logs())

    def test_seq_gaps_and_duplicates_are_counted(self):
        port = free_port()
        server = self.start_server(port)
        s = self.canip_client(port, hello(SEQ))
        self.server_hello(s, hello(SEQ))
        for seq in (0, 1, 4, 4, 5):
            s.sendall(encode(0x200 + seq, b"", seq=seq))
        self.wait_frames(server, ["200#", "201#", "204#", "205#"])
        self.assertTrue(server.wait_err(r"SEQ gap: 2 frames lost so far in 1 gaps"), self.logs())
        self.assertTrue(server.wait_err(r"SEQ duplicate: 1 frames repeated so far \(dropped\)"), self.logs())
        s_stats, = self.stop(server)
        self.assertEqual((s_stats["lost"], s_stats["duplicates"]), (2, 1), self.logs())

    def test_bad_input_is_named_and_harms_no_one_else(self):
        port = free_port()
        server = self.start_server(port)
        tcpcan_client = self.start_client(port)
        s = self.canip_client(port, b"CANIP/5.0 FEAT=SEQ\n")
        self.assertTrue(eof_within(s), "a bad hello did not close the connection" + self.logs())
        self.assertTrue(server.wait_err(r"canip protocol error in its hello: hello line names a canip version other "
                                        r"than 4\.1"), self.logs())
        s = self.canip_client(port, hello(0))
        self.server_hello(s, hello(SEQ))
        s.sendall(encode(0x100, b"") + b"\x00\x09" + encode(0x100, b"")[2:])  # dlc 9
        self.assertTrue(eof_within(s), "a bad frame did not close the connection" + self.logs())
        self.assertTrue(server.wait_err(r"frame dlc above 8, in the frame at byte 14 after the hello"), self.logs())
        s = self.canip_client(port, b"CANIP/4.1 FEAT=" + b"SEQ," * 40)  # no end of line
        self.assertTrue(eof_within(s), "an endless hello did not close the connection" + self.logs())
        self.assertTrue(server.wait_err(r"hello line longer than 128 bytes"), self.logs())
        self.wait_frames(server, ["100#"])
        tcpcan_client.send(["7E0#01"])
        self.wait_frames(server, ["100#", "7E0#01"])
        server.send(["321#02"])
        self.wait_frames(tcpcan_client, ["100#", "321#02"])  # the canip client's good frame, then the bus's
        self.stop(server, tcpcan_client)

    def test_tcpcan_clients_still_agree_version_2_on_the_same_command_line(self):
        port = free_port()
        server = self.start_server(port)
        client = self.start_client(port)
        original = self.start_client(port, form="tcpcan", name="original")
        canip = self.canip_client(port, hello(SEQ))
        self.server_hello(canip, hello(SEQ))
        self.assertTrue(server.wait_err(r"version 2 agreed", 2), self.logs())
        self.assertIn("version 2 agreed", client.err(), self.logs())
        client.send(["111#11"])
        self.wait_frames(server, ["111#11"])
        self.wait_frames(original, ["111#11"])
        self.assert_frames_on_wire(canip, SEQ, ["111#11"])
        self.stop(server, client, original)

    def test_our_canip_client_and_server(self):
        port = free_port()
        server = self.start_server(port, ["--timestamps"])
        client = self.start_client(port, ["--dialect", "canip", "--timestamps"], version=None)
        self.assertTrue(client.wait_err(r"canip 4\.1 agreed, features SEQ,TS"), self.logs())
        self.assertTrue(server.wait_err(r"canip 4\.1 agreed, features SEQ,TS"), self.logs())
        server.send(["(1700000000.000042) can0 123#0102", "456##1AA", "7FF#R2", "1ABCDE0F#"])
        client.send(["321#03"])
        self.wait_frames(client, ["123#0102", "1ABCDE0F#"])
        self.assertTrue(client.raw_lines()[0].startswith("(1700000000.000042) "), self.logs())
        self.wait_frames(server, ["321#03"])
        s_stats, c_stats = self.stop(server, client)
        self.assertEqual((s_stats["sent"], s_stats["dropped"], c_stats["lost"]), (2, 2, 0), self.logs())

    def test_listen_canip_forces_the_dialect(self):
        port, tport = free_port(), free_port()
        server = self.start("server", ["server", "--can", "-", "--bind", "127.0.0.1", "--listen", "canip@%d" % port,
                                       "--listen", "tcpcan@%d" % tport])
        self.assertTrue(server.wait_err(r"listening on 127\.0\.0\.1:%d" % tport), self.logs())
        self.assertTrue(server.wait_err(r"listening on 127\.0\.0\.1:%d \(canip" % port), self.logs())
        s = self.canip_client(port)  # says nothing: canip_peer's rule makes it 4.0 after 2 s
        self.assertEqual(read_line(s), hello(SEQ), "a canip listener greets at once" + self.logs())
        self.assertTrue(server.wait_err(r"canip 4\.0 \(no hello\)"), self.logs())
        server.send(["123#01"])
        self.assertEqual(recv_until(s, 14), encode(0x123, b"\x01"), self.logs())
        t = self.canip_client(tport, hello(SEQ))  # the tcpcan listener does not detect canip
        self.assertTrue(eof_within(t), self.logs())
        self.assertTrue(server.wait_err(r"message other than 'v' before version agreement"), self.logs())
        self.stop(server)


# ---------------------------------------------------------------------------------------
class TestCanipClient(CanipTest):
    """`tcpcan client --can - --host H --port P` (the canip_peer command line) against canip_peer servers."""

    def fake(self, **kw):
        f = FakeCanipServer(**kw)
        self.addCleanup(f.close)
        return f

    def test_server_that_greets_at_once(self):
        for features in (SEQ, SEQ | TS, 0):
            with self.subTest(features=features):
                srv = self.fake(features=features)
                client = self.start_client(srv.port, ["--timestamps"], version=None, name="client%d" % features)
                self.assertTrue(srv.ready.wait(WAIT), self.logs())
                self.assertEqual(srv.client_line, hello(SEQ | TS), self.logs())
                self.assertEqual(srv.agreed, features)
                self.assertTrue(client.wait_err(r"canip 4\.1 agreed"), self.logs())
                ts = 1700000001000000 if features & TS else None
                srv.conn.sendall(encode(0x10, b"\x01", seq=0 if features & SEQ else None, ts=ts) +
                                 encode(0x1FFFFFFF, b"\xAA" * 8, extended=True, seq=1 if features & SEQ else None,
                                        ts=ts))
                self.wait_frames(client, ["010#01", "1FFFFFFF#AAAAAAAAAAAAAAAA"])
                if ts:
                    self.assertTrue(client.raw_lines()[0].startswith("(1700000001.000000)"), self.logs())
                client.send(["7DF#0201", "12345678#"])
                self.assert_frames_on_wire(srv.conn, features, ["7DF#0201", "12345678#"])
                self.stop(client)

    def test_server_that_greets_late_gets_4_0_framing(self):
        # Over a link slower than the client's wait, the greeting comes after our tcpcan
        # proposal, which canip_peer reads as the start of our hello line.
        srv = self.fake(features=SEQ, greet_delay=0.6)
        client = self.start_client(srv.port, version=None)
        self.assertTrue(srv.ready.wait(WAIT), self.logs())
        self.assertEqual(srv.client_line, b"v\x04\x00\x00\x00\x02\n", self.logs())
        self.assertEqual(srv.agreed, 0, "canip_peer runs 4.0 framing after a line that is no hello")
        self.assertTrue(client.wait_err(r"greeted after our tcpcan proposal"), self.logs())
        srv.conn.sendall(encode(0x321, b"\x03\x02\x01"))
        self.wait_frames(client, ["321#030201"])
        client.send(["456#04"])
        self.assert_frames_on_wire(srv.conn, 0, ["456#04"])
        self.stop(client)

    def test_legacy_server_that_sends_frames_at_once(self):
        srv = self.fake(legacy=True, first=encode(0x7FF, b"\x01\x02"))
        client = self.start_client(srv.port, version=None)
        self.wait_frames(client, ["7FF#0102"])
        self.assertTrue(srv.ready.wait(WAIT), self.logs())
        client.send(["001#FF"])
        self.assert_frames_on_wire(srv.conn, 0, ["001#FF"])
        self.assertTrue(client.wait_err(r"canip 4\.0 \(no hello\)"), self.logs())
        self.stop(client)

    def test_dialect_canip_sends_its_hello_at_once(self):
        srv = self.fake(features=SEQ, greet_delay=0.6)
        client = self.start_client(srv.port, ["--dialect", "canip"], version=None)
        self.assertTrue(srv.ready.wait(WAIT), self.logs())
        self.assertEqual(srv.client_line, hello(SEQ), self.logs())
        self.assertTrue(client.wait_err(r"canip 4\.1 agreed, features SEQ"), self.logs())
        srv.conn.sendall(encode(0x11, b"", seq=0))
        self.wait_frames(client, ["011#"])
        self.stop(client)

    def test_our_server_and_client_still_agree_version_2(self):
        port = free_port()
        server = self.start_server(port)
        client = self.start_client(port)  # waits for "features agreed"
        self.assertTrue(server.wait_err(r"version 2 agreed"), self.logs())
        self.assertNotIn("canip", client.err() + server.err(), self.logs())
        server.send(["123#45"])
        self.wait_frames(client, ["123#45"])
        self.stop(server, client)


# ---------------------------------------------------------------------------------------
class TestCanipBuses(BusTest, CanipTest):
    """canip clients on a server of two buses: a canip listener tied to the second bus, a
    tcpcan client on the first; frames never cross."""

    def test_a_canip_listener_tied_to_a_bus(self):
        port_t, port_c = free_port(), free_port()
        server, bus2 = self.start_two_bus_server(["tcpcan@127.0.0.1:%d:-" % port_t, "canip@127.0.0.1:%d:BUS2" % port_c])
        self.assertIn("listening on 127.0.0.1:%d (canip, bus %s" % (port_c, bus2.spec), server.err())
        t = self.start_client(port_t, name="tcpcan-client")
        c = self.canip_client(port_c, hello(SEQ))
        self.server_hello(c, hello(SEQ))
        self.assertTrue(server.wait_err(r"canip 4\.1 agreed"), self.logs())
        c.sendall(encode(0x2C1, b"\xC1", seq=0))  # canip client: bus 2 only
        t.send(["1A1#A1"])                          # tcpcan client: bus '-' only
        server.send(["3B1#B1"])                     # bus '-': the tcpcan client only
        bus2.send(["4D1#D1"])                       # bus 2: the canip client only
        self.assertEqual(bus2.wait_frames(1), ["2C1#C1"], self.logs())
        self.wait_frames(server, ["1A1#A1"])
        self.wait_frames(t, ["3B1#B1"])
        self.assert_frames_on_wire(c, SEQ, ["4D1#D1"])
        self.stop(server, t)
        self.assertEqual(bus2.frames(), ["2C1#C1"], self.logs())
        self.assertEqual(server.frames(), ["1A1#A1"], self.logs())
        self.assertEqual(t.frames(), ["3B1#B1"], self.logs())
        self.assertEqual(recv_until(c, 1, timeout=0.5), b"", "nothing else reached the canip client" + self.logs())


def main(argv):
    return test_bridge.run_tests(__name__, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Integration tests: tcpcan against cannelloni peers, TCP and UDP, in both roles.

The cannelloni peer here is written from cannelloni's documents (doc/tcp_protocol.md,
doc/udp_format.md and <linux/can.h>), not from our implementation: it checks the bytes on
the wire. On our side the bus is stdio ('-'): candump lines in, candump lines out.

Usage: test_cannelloni.py [--tcpcan PATH] [unittest names, e.g. TestCannelloniTcp]
Prints unittest's summary, then a line "N passed, M failed"; exits non-zero on failure.
"""
import os
import re
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_bridge  # noqa: E402  (Proc, BridgeTest, free_port: the process harness)
from test_bridge import BridgeTest, free_port  # noqa: E402

IO_TIMEOUT = 10.0  # s: a socket operation of the test peer gives up after this

# ---- the cannelloni peer, from the documents ---------------------------------------------

HANDSHAKE = b"CANNELLONIv1"
CAN_EFF_FLAG = 0x80000000
CAN_RTR_FLAG = 0x40000000
CAN_ERR_FLAG = 0x20000000
CANFD_FRAME = 0x80  # in len
CANFD_BRS = 0x01
CANFD_ESI = 0x02


def encode_frame(can_id, data=b"", fd=False, fd_flags=0, rtr_len=None):
    """One frame: can_id u32 BE, len u8 (| 0x80 for FD), FD flags u8, data (none for RTR)."""
    if can_id & CAN_RTR_FLAG:
        return struct.pack(">IB", can_id, rtr_len)
    if fd:
        return struct.pack(">IBB", can_id, len(data) | CANFD_FRAME, fd_flags) + data
    return struct.pack(">IB", can_id, len(data)) + data


def packet(seq, frames):
    """A UDP packet: version 2, op DATA 0, seq u8, count u16 BE, frames."""
    return struct.pack(">BBBH", 2, 0, seq, len(frames)) + b"".join(frames)


def parse_packet(p):
    """(seq, [frame bytes]) of a packet; asserts the header and that the frames fill it exactly."""
    version, op, seq, count = struct.unpack(">BBBH", p[:5])
    assert version == 2 and op == 0, "bad packet header %r" % p[:5]
    frames, at = [], 5
    for _ in range(count):
        can_id, length = struct.unpack(">IB", p[at:at + 5])
        size = 5
        if length & CANFD_FRAME:
            size += 1 + (length & 0x7F)
        elif not can_id & CAN_RTR_FLAG:
            size += length
        frames.append(p[at:at + size])
        at += size
    assert at == len(p), "packet has %d bytes after its %d frames" % (len(p) - at, count)
    return seq, frames


def read_exact(sock, n):
    data = b""
    deadline = time.monotonic() + IO_TIMEOUT
    while len(data) < n and time.monotonic() < deadline:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


# What the peer sends, and the candump line our stdio bus must print for it. Every kind
# cannelloni carries: standard, extended, RTR (with a length, standard and extended), CAN FD
# with and without BRS/ESI (12 and 64 bytes, and a short FD frame).
PEER_TO_BUS = [
    (encode_frame(0x123, bytes([0x11, 0x22])), "123#1122"),
    (encode_frame(0x000), "000#"),
    (encode_frame(0x1ABCDE0F | CAN_EFF_FLAG, bytes(range(1, 9))), "1ABCDE0F#0102030405060708"),
    (encode_frame(0x7FF | CAN_RTR_FLAG, rtr_len=4), "7FF#R4"),
    (encode_frame(0x1ABCDE0F | CAN_EFF_FLAG | CAN_RTR_FLAG, rtr_len=8), "1ABCDE0F#R8"),
    (encode_frame(0x456, bytes(range(12)), fd=True, fd_flags=CANFD_BRS), "456##5" + bytes(range(12)).hex().upper()),
    (encode_frame(0x1ABCDE0F | CAN_EFF_FLAG, bytes(range(0xC0, 0x100)), fd=True, fd_flags=CANFD_BRS | CANFD_ESI),
     "1ABCDE0F##7" + bytes(range(0xC0, 0x100)).hex().upper()),
    (encode_frame(0x321, bytes([0xAA]), fd=True), "321##4AA"),
]

# What our stdio bus reads, and the bytes the peer must receive for it.
BUS_TO_PEER = [
    ("123#1122", encode_frame(0x123, bytes([0x11, 0x22]))),
    ("000#", encode_frame(0x000)),
    ("1ABCDE0F#0102030405060708", encode_frame(0x1ABCDE0F | CAN_EFF_FLAG, bytes(range(1, 9)))),
    ("7FF#R4", encode_frame(0x7FF | CAN_RTR_FLAG, rtr_len=4)),
    ("1ABCDE0F#R", encode_frame(0x1ABCDE0F | CAN_EFF_FLAG | CAN_RTR_FLAG, rtr_len=0)),
    ("456##1" + bytes(range(12)).hex(), encode_frame(0x456, bytes(range(12)), fd=True, fd_flags=CANFD_BRS)),
    ("12345678##3" + bytes(range(64)).hex(),
     encode_frame(0x12345678 | CAN_EFF_FLAG, bytes(range(64)), fd=True, fd_flags=CANFD_BRS | CANFD_ESI)),
    ("321##0AA", encode_frame(0x321, bytes([0xAA]), fd=True)),
]
ERROR_FRAME_LINE = "20000004#0000040000000000"  # CAN_ERR_CRTL: cannelloni does not carry it
AFTER_ERROR = ("124#01", encode_frame(0x124, bytes([1])))


class CannelloniTest(BridgeTest):
    def start_listening(self, dialect, port, extra=()):
        args = ["server", "--can", "-", "--listen", "%s@127.0.0.1:%d" % (dialect, port)] + list(extra)
        p = self.start("server", args)
        self.assertTrue(p.wait_err(r"listening on 127\.0\.0\.1:%d" % port), "server did not listen" + self.logs())
        return p

    def start_dialect_client(self, dialect, port, extra=()):
        args = ["client", "--can", "-", "--dialect", dialect, "--host", "127.0.0.1", "--port", str(port)] + list(extra)
        return self.start("client", args)

    def final_stats(self, proc):
        return self.stop(proc)[0]


# ---- TCP ---------------------------------------------------------------------------------

class TestCannelloniTcp(CannelloniTest):
    def connect(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.addCleanup(s.close)
        return s

    def exchange(self, proc, sock):
        """Handshake both ways, then every frame kind both ways, checked byte for byte."""
        sock.sendall(HANDSHAKE)
        self.assertEqual(read_exact(sock, 12), HANDSHAKE, "no CANNELLONIv1 from tcpcan" + self.logs())
        self.assertTrue(proc.wait_err(r"cannelloni handshake done"), self.logs())
        # Frames split at an awkward place: inside the first frame's id.
        stream = b"".join(wire for wire, _ in PEER_TO_BUS)
        sock.sendall(stream[:2])
        time.sleep(0.05)
        sock.sendall(stream[2:])
        self.wait_frames(proc, [line for _, line in PEER_TO_BUS])

        proc.send([line for line, _ in BUS_TO_PEER] + [ERROR_FRAME_LINE, AFTER_ERROR[0]])
        expected = b"".join(wire for _, wire in BUS_TO_PEER) + AFTER_ERROR[1]
        self.assertEqual(read_exact(sock, len(expected)).hex(), expected.hex(), "bytes on the wire" + self.logs())

    def test_our_server_their_client(self):
        port = free_port()
        server = self.start_listening("cannelloni", port)
        sock = self.connect(port)
        self.exchange(server, sock)
        sock.close()
        stats = self.final_stats(server)
        self.assertEqual(stats["received"], len(PEER_TO_BUS))
        self.assertEqual(stats["sent"], len(BUS_TO_PEER) + 1)
        self.assertGreaterEqual(stats["dropped"], 1)  # the error frame

    def test_their_server_our_client(self):
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        listener.settimeout(IO_TIMEOUT)
        port = listener.getsockname()[1]
        client = self.start_dialect_client("cannelloni", port)
        sock, _ = listener.accept()
        self.addCleanup(sock.close)
        sock.settimeout(IO_TIMEOUT)
        self.exchange(client, sock)
        stats = self.final_stats(client)
        self.assertEqual(stats["received"], len(PEER_TO_BUS))
        self.assertEqual(stats["sent"], len(BUS_TO_PEER) + 1)

    def test_a_burst_of_small_frames_in_one_write(self):
        port = free_port()
        server = self.start_listening("cannelloni", port)
        sock = self.connect(port)
        sock.sendall(HANDSHAKE)
        self.assertEqual(read_exact(sock, 12), HANDSHAKE)
        n = 1500  # 7.5 kB of 5-byte frames (RTR, len 0, and empty data frames), in one write
        sock.sendall(b"".join(encode_frame(i & 0x7FF | (CAN_RTR_FLAG if i % 2 else 0), rtr_len=0) for i in range(n)))
        expected = ["%03X#%s" % (i & 0x7FF, "R" if i % 2 else "") for i in range(n)]
        self.wait_frames(server, expected)
        self.assertEqual(self.final_stats(server)["received"], n)

    def test_our_client_reconnects_after_their_server_hangs_up(self):
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        listener.settimeout(IO_TIMEOUT + 5)
        client = self.start_dialect_client("cannelloni", listener.getsockname()[1])
        for round_ in range(2):
            sock, _ = listener.accept()
            sock.settimeout(IO_TIMEOUT)
            self.assertEqual(read_exact(sock, 12), HANDSHAKE, "round %d%s" % (round_, self.logs()))
            sock.sendall(HANDSHAKE + encode_frame(0x200 + round_, bytes([round_])))
            self.wait_frames(client, ["%03X#%02X" % (0x200 + r, r) for r in range(round_ + 1)])
            client.send(["%03X#%02X" % (0x300 + round_, round_)])
            self.assertEqual(read_exact(sock, 6), encode_frame(0x300 + round_, bytes([round_])))
            sock.close()  # cannelloni's server going away: our client connects again
        self.assertEqual(self.final_stats(client)["received"], 2)

    def test_fixed_peer_address_refuses_other_connections(self):
        port = free_port()
        server = self.start_listening("cannelloni", port, ["--cannelloni-peer", "127.0.0.2"])
        stranger = self.connect(port)  # from 127.0.0.1
        self.assertEqual(stranger.recv(64), b"", "a stranger got bytes" + self.logs())  # closed, no handshake
        self.assertTrue(server.wait_err(r"refused: not the cannelloni peer 127\.0\.0\.2 \(--cannelloni-peer\)"),
                        self.logs())
        try:
            peer = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT, source_address=("127.0.0.2", 0))
        except OSError as e:
            self.skipTest("cannot connect from 127.0.0.2: %s" % e)
        self.addCleanup(peer.close)
        peer.sendall(HANDSHAKE + encode_frame(0x42, b"\x01"))
        self.assertEqual(read_exact(peer, 12), HANDSHAKE)
        self.wait_frames(server, ["042#01"])

    def assert_refused(self, server, port, data, reason):
        sock = self.connect(port)
        sock.sendall(data)
        # tcpcan closes the connection: the peer reads its handshake (maybe), then EOF.
        got = b""
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        self.assertTrue(got in (b"", HANDSHAKE), got)
        self.assertTrue(server.wait_err(re.escape(reason)), "reason %r not logged%s" % (reason, self.logs()))

    def test_bad_input_is_named_and_closes_only_that_connection(self):
        port = free_port()
        server = self.start_listening("cannelloni", port)
        good = self.connect(port)
        good.sendall(HANDSHAKE)
        self.assertEqual(read_exact(good, 12), HANDSHAKE)
        self.assert_refused(server, port, b"CANNELLONIv2", 'the first 12 bytes are not "CANNELLONIv1"')
        self.assert_refused(server, port, HANDSHAKE + struct.pack(">IB", 0x123, 0xC1), "CAN FD frame with len above 64")
        self.assert_refused(server, port, HANDSHAKE + struct.pack(">IB", 0x123, 9), "classic frame with len above 8")
        self.assert_refused(server, port, HANDSHAKE + struct.pack(">IBB", 0x123, 0x8A, 0) + bytes(10),
                            "CAN FD len not one of")
        # The first connection still carries frames both ways.
        good.sendall(encode_frame(0x42, b"\x01"))
        self.wait_frames(server, ["042#01"])
        server.send(["043#02"])
        self.assertEqual(read_exact(good, 6), encode_frame(0x43, b"\x02"))


# ---- UDP ---------------------------------------------------------------------------------

def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_socket(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(IO_TIMEOUT)
    return s


class TestCannelloniUdp(CannelloniTest):
    def receive_frames(self, sock, count):
        """Packets until `count` frames came; returns (seqs, frame bytes, sender)."""
        seqs, frames, sender = [], [], None
        for _ in range(count):  # at least one frame per packet
            data, sender = sock.recvfrom(65536)
            seq, got = parse_packet(data)
            seqs.append(seq)
            frames += got
            if len(frames) >= count:
                break
        return seqs, frames, sender

    def exchange(self, proc, sock, dest, already=()):
        sock.sendto(packet(0, [wire for wire, _ in PEER_TO_BUS[:3]]), dest)
        sock.sendto(packet(1, [wire for wire, _ in PEER_TO_BUS[3:]]), dest)
        self.wait_frames(proc, list(already) + [line for _, line in PEER_TO_BUS])

        proc.send([line for line, _ in BUS_TO_PEER] + [ERROR_FRAME_LINE, AFTER_ERROR[0]])
        expected = [wire for _, wire in BUS_TO_PEER] + [AFTER_ERROR[1]]
        seqs, frames, sender = self.receive_frames(sock, len(expected))
        self.assertEqual([f.hex() for f in frames], [e.hex() for e in expected], "frames on the wire" + self.logs())
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))), "sequence numbers follow each other")
        return sender

    def test_our_server_their_client(self):
        port = free_port()
        server = self.start_listening("cannelloni-udp", port)
        sock = udp_socket()
        self.addCleanup(sock.close)
        self.exchange(server, sock, ("127.0.0.1", port))
        self.assertTrue(server.wait_err(r"cannelloni peer is 127\.0\.0\.1:%d" % sock.getsockname()[1]), self.logs())
        stats = self.final_stats(server)
        self.assertEqual(stats["received"], len(PEER_TO_BUS))
        self.assertEqual(stats["sent"], len(BUS_TO_PEER) + 1)

    def test_their_server_our_client(self):
        sock = udp_socket()
        self.addCleanup(sock.close)
        port = sock.getsockname()[1]
        local = free_udp_port()
        client = self.start_dialect_client("cannelloni-udp", port, ["--cannelloni-local-port", str(local)])
        self.assertTrue(client.wait_err(r"cannelloni-udp over UDP from 127\.0\.0\.1:%d" % local), self.logs())
        # Like cannelloni's -r, the peer sends to our fixed local port before we sent anything.
        sock.sendto(packet(9, [encode_frame(0x100, b"\x01")]), ("127.0.0.1", local))
        self.wait_frames(client, ["100#01"])
        client.send(["101#02"])
        seqs, frames, sender = self.receive_frames(sock, 1)
        self.assertEqual(frames, [encode_frame(0x101, b"\x02")])
        self.assertEqual(seqs, [0])
        self.assertEqual(sender, ("127.0.0.1", local))
        client_frames = client.frames()
        self.exchange(client, sock, sender, already=client_frames)
        self.final_stats(client)

    def test_datagrams_from_another_port_do_not_reach_our_client(self):
        sock = udp_socket()
        self.addCleanup(sock.close)
        other = udp_socket()
        self.addCleanup(other.close)
        local = free_udp_port()
        client = self.start_dialect_client("cannelloni-udp", sock.getsockname()[1],
                                           ["--cannelloni-local-port", str(local)])
        self.assertTrue(client.wait_err(r"over UDP from"), self.logs())
        other.sendto(packet(0, [encode_frame(0x666, b"\x66")]), ("127.0.0.1", local))
        sock.sendto(packet(0, [encode_frame(0x100, b"\x01")]), ("127.0.0.1", local))
        self.wait_frames(client, ["100#01"])
        self.assertEqual(self.final_stats(client)["received"], 1)

    def test_sequence_gaps_are_counted_as_lost(self):
        port = free_port()
        server = self.start_listening("cannelloni-udp", port)
        sock = udp_socket()
        self.addCleanup(sock.close)
        for seq in (250, 251, 254, 255, 0, 3):  # 252, 253, 1, 2 lost
            sock.sendto(packet(seq, [encode_frame(0x100 + seq, bytes([seq]))]), ("127.0.0.1", port))
        self.wait_frames(server, ["1FA#FA", "1FB#FB", "1FE#FE", "1FF#FF", "100#00", "103#03"])
        stats = self.final_stats(server)
        self.assertEqual(stats["lost"], 4)
        self.assertRegex(server.err(), r"packets sent=0 received=6 refused=0 from_other_addresses=0 lost=4 out_of_order=0")

    def test_bad_packets_are_dropped_named_and_counted(self):
        port = free_port()
        server = self.start_listening("cannelloni-udp", port)
        sock = udp_socket()
        self.addCleanup(sock.close)
        dest = ("127.0.0.1", port)
        good = encode_frame(0x123, b"\x01")
        sock.sendto(struct.pack(">BBBH", 3, 0, 0, 1) + good, dest)
        self.assertTrue(server.wait_err(r"packet refused: UDP packet version is not 2"), self.logs())
        sock.sendto(packet(1, [struct.pack(">IB", 0x123, 0xC1)]), dest)  # FD len 65
        self.assertTrue(server.wait_err(r"CAN FD frame with len above 64"), self.logs())
        sock.sendto(packet(2, [good])[:-1], dest)  # the frame's data byte is missing
        self.assertTrue(server.wait_err(r"ends inside a frame"), self.logs())
        sock.sendto(packet(3, [good, good]) + b"\x00", dest)  # a byte after the counted frames
        self.assertTrue(server.wait_err(r"bytes after the frames"), self.logs())
        sock.sendto(packet(4, [good]), dest)
        self.wait_frames(server, ["123#01"])
        stats = self.final_stats(server)
        self.assertEqual(stats["received"], 1)
        self.assertGreaterEqual(stats["dropped"], 1 + 1 + 2)  # frames the refused packets announced
        self.assertRegex(server.err(), r"packets sent=0 received=1 refused=4 ")

    def test_fixed_peer_address_refuses_other_senders(self):
        peer = udp_socket("127.0.0.1")
        self.addCleanup(peer.close)
        try:
            stranger = udp_socket("127.0.0.2")
        except OSError as e:
            self.skipTest("cannot bind 127.0.0.2: %s" % e)
        self.addCleanup(stranger.close)
        port = free_port()
        server = self.start_listening("cannelloni-udp", port,
                                      ["--cannelloni-peer", "127.0.0.1:%d" % peer.getsockname()[1]])
        dest = ("127.0.0.1", port)
        stranger.sendto(packet(0, [encode_frame(0x666, b"\x66")]), dest)
        self.assertTrue(server.wait_err(r"packets from addresses other than the cannelloni peer"), self.logs())
        # The fixed peer gets frames before it ever sent anything.
        server.send(["101#01"])
        seqs, frames, _ = self.receive_frames(peer, 1)
        self.assertEqual(frames, [encode_frame(0x101, b"\x01")])
        peer.sendto(packet(0, [encode_frame(0x102, b"\x02")]), dest)
        self.wait_frames(server, ["102#02"])
        stats = self.final_stats(server)
        self.assertEqual(stats["received"], 1)
        self.assertRegex(server.err(), r"packets sent=1 received=1 refused=0 from_other_addresses=1 lost=0")

    def test_a_udp_listener_is_not_a_client_a_full_server_makes_room_with(self):
        # --max-clients 1: a tcpcan client takes the one place; the UDP socket is neither
        # counted nor closed to make room (it lives as long as the server).
        tcp_port, udp_port = free_port(), free_port()
        args = ["server", "--can", "-", "--listen", "tcpcan@127.0.0.1:%d" % tcp_port,
                "--listen", "cannelloni-udp@127.0.0.1:%d" % udp_port, "--max-clients", "1", "--evict-idle", "0.05"]
        server = self.start("server", args)
        self.assertTrue(server.wait_err(r"listening on 127\.0\.0\.1:%d" % udp_port), self.logs())
        client = self.start("client", ["client", "--can", "-", "--host", "127.0.0.1", "--port", str(tcp_port)])
        self.assertTrue(client.wait_err(r"features agreed"), self.logs())
        time.sleep(0.2)  # longer than --evict-idle: the UDP socket has been silent that long
        sock = udp_socket()
        self.addCleanup(sock.close)
        sock.sendto(packet(0, [encode_frame(0x77, b"\x07")]), ("127.0.0.1", udp_port))
        self.wait_frames(server, ["077#07"])
        self.wait_frames(client, ["077#07"])
        self.assertNotIn("server full", server.err())

    def test_command_line_errors_are_named(self):
        cases = [
            (["server", "--can", "-", "--listen", "cannelloni-udp@127.0.0.1:%d" % free_udp_port(),
              "--cannelloni-peer", "127.0.0.1:99999"], "--cannelloni-peer '127.0.0.1:99999': port '99999'"),
            (["server", "--can", "-", "--listen", "cannelloni-udp@127.0.0.1:%d" % free_udp_port(),
              "--cannelloni-peer", "[::1"], "--cannelloni-peer '[::1': '[' without ']'"),
            (["server", "--can", "-", "--listen", "tcpcan@127.0.0.1:%d" % free_port(),
              "--cannelloni-peer", "127.0.0.1"], "--cannelloni-peer is for a server with --listen cannelloni@"),
            (["client", "--can", "-", "--host", "127.0.0.1", "--cannelloni-local-port", "5"],
             "--cannelloni-local-port is for a client with --dialect cannelloni-udp"),
            (["client", "--can", "-", "--dialect", "cannelloni-udp", "--host", "127.0.0.1",
              "--cannelloni-local-port", "70000"], "--cannelloni-local-port"),
            (["client", "--can", "-", "--dialect", "cannelloni-udp", "--host", "127.0.0.1",
              "--cannelloni-timeout", "nan"], "--cannelloni-timeout"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                r = subprocess.run([test_bridge.TCPCAN] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=IO_TIMEOUT)
                self.assertEqual(r.returncode, 2, r.stderr.decode())
                self.assertIn(message, r.stderr.decode())


def main(argv):
    return test_bridge.run_tests(__name__, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

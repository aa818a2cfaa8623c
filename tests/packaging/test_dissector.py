#!/usr/bin/env python3
"""The Wireshark dissector (packaging/tcpcan.lua) against PROTOCOL.md's test vectors.

Captures are built with text2pcap from the vectors' bytes, cut into TCP segments that split
messages anywhere, and decoded by tshark with the dissector loaded; the test reads tshark's
PDML and checks each message's summary (PROTOCOL.md's own description syntax) and its
fields, the error names of malformed messages (also those that depend on the connection's
state), both directions of a connection, and that version-1 'd' payloads reach Wireshark's
SocketCAN dissectors.

Usage: test_dissector.py --lua packaging/tcpcan.lua --protocol PROTOCOL.md
         [--tshark PATH] [--text2pcap PATH]
Prints "N passed, M failed"; exits non-zero on failure.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

ARGS = None
TSHARK_TIMEOUT = 120  # s: bounds a hung tshark, never a measurement

# Errors the dissector can name from a message alone. The others in PROTOCOL.md
# (not_allowed_*, and 'd' after agreement on 2) depend on the connection's state: the
# dissector names them only where both directions were captured from the first 'v'
# (test_messages_not_allowed_in_the_connections_state); one direction alone is decoded by prefix.
STATELESS_ERRORS = {
    "bad_version_length", "bad_data_length", "invalid_frame", "bad_features_length",
    "bad_ping_length", "bad_frame_length", "bad_subscribe_length", "bad_subscribe_op",
    "bad_filter_entry", "bad_close_length", "unknown_prefix",
}


def read_vectors(path):
    """[(kind, mode, bytes, text)] from the ```vectors blocks of PROTOCOL.md."""
    vectors, inside = [], False
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("```"):
            inside = line.strip() == "```vectors"
            continue
        if not inside or not line.strip():
            continue
        m = re.match(r"^(good|bad)\s+(\w+)\s+([0-9A-Fa-f ]+?)\s*\|\s*(.*)$", line)
        if not m:
            raise ValueError("unreadable vector line: %r" % line)
        vectors.append((m.group(1), m.group(2), bytes.fromhex(m.group(3)), m.group(4).strip()))
    return vectors


def write_text2pcap(path, segments):
    """One packet per segment, in text2pcap's hex dump form. A segment given as
    (direction, bytes) is preceded by text2pcap's -D direction line, I or O."""
    with open(path, "w") as f:
        for segment in segments:
            if isinstance(segment, tuple):
                f.write(segment[0] + "\n")
                segment = segment[1]
            for offset in range(0, len(segment), 16):
                chunk = segment[offset:offset + 16]
                f.write("%06x  %s\n" % (offset, " ".join("%02x" % b for b in chunk)))
            f.write("\n")


def split(stream, size):
    return [stream[i:i + size] for i in range(0, len(stream), size)]


class Decoded:
    """One tcpcan message as tshark showed it: its fields (name -> [show, ...])."""

    def __init__(self, proto, source_port=None):
        self.source_port = source_port
        self.fields = {}
        for field in proto.iter("field"):
            self.fields.setdefault(field.get("name"), []).append(field.get("show"))

    def one(self, name):
        values = self.fields.get(name, [])
        return values[0] if len(values) == 1 else None


def decode(segments, port=20010):
    """Runs tshark over a capture of `segments` (client -> server); returns the tcpcan
    messages in order and the other protocols' elements (e.g. SocketCAN) in order."""
    with tempfile.TemporaryDirectory(prefix="tcpcan-dissector-") as tmp:
        text = os.path.join(tmp, "capture.txt")
        pcap = os.path.join(tmp, "capture.pcap")
        write_text2pcap(text, segments)
        directions = ["-D"] if isinstance(segments[0], tuple) else []
        subprocess.run([ARGS.text2pcap, "-q"] + directions + ["-T", "40000,%d" % port, text, pcap], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TSHARK_TIMEOUT)
        out = subprocess.run([ARGS.tshark, "-n", "-X", "lua_script:" + ARGS.lua, "-r", pcap, "-T", "pdml"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, timeout=TSHARK_TIMEOUT)
    err = out.stderr.decode(errors="replace")
    if "Lua" in err and "rror" in err:
        raise AssertionError("tshark reported a Lua error: " + err)
    root = ET.fromstring(out.stdout)
    messages, others = [], []
    for packet in root.iter("packet"):
        ports = [f.get("show") for f in packet.iter("field") if f.get("name") == "tcp.srcport"]
        for proto in packet.iter("proto"):
            name = proto.get("name")
            if name == "tcpcan":
                messages.append(Decoded(proto, int(ports[0]) if ports else None))
            elif name in ("can", "canfd"):
                others.append((name, Decoded(proto)))
    return messages, others


def description_fields(text):
    """'f id=123 ext len=3 seq=7 data=112233' -> {'kind': 'f', 'id': ..., 'flags': {...}}"""
    words = text.split()
    out = {"kind": words[0], "flags": set()}
    for word in words[1:]:
        if "=" in word:
            key, value = word.split("=", 1)
            out[key] = value
        else:
            out["flags"].add(word)
    return out


class TestDissector(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.vectors = read_vectors(ARGS.protocol)
        cls.good = [(mode, data, text) for kind, mode, data, text in cls.vectors if kind == "good"]
        cls.bad = [(mode, data, text.split()[0]) for kind, mode, data, text in cls.vectors if kind == "bad"]
        assert len(cls.good) >= 25 and len(cls.bad) >= 25, "PROTOCOL.md's vectors were not found"
        cls.stream = b"".join(data for _, data, _ in cls.good)

    def check_summaries(self, messages):
        self.assertEqual([m.one("tcpcan.summary") for m in messages], [text for _, _, text in self.good])
        self.assertEqual([m.fields.get("tcpcan.error") for m in messages], [None] * len(self.good))

    def test_every_good_vector_split_across_segments(self):
        # 7-byte segments: most messages span two or more segments, small ones share one.
        messages, _ = decode(split(self.stream, 7))
        self.check_summaries(messages)

    def test_one_byte_segments(self):
        messages, _ = decode(split(self.stream, 1))
        self.check_summaries(messages)

    def test_all_in_one_segment_on_port_3333(self):
        messages, _ = decode([self.stream], port=3333)
        self.check_summaries(messages)

    def test_frame_fields(self):
        messages, _ = decode(split(self.stream, 5))
        self.assertEqual(len(messages), len(self.good))
        flag_fields = {"ext": "tcpcan.frame.ext", "rtr": "tcpcan.frame.rtr", "err": "tcpcan.frame.err",
                       "fd": "tcpcan.frame.fd", "brs": "tcpcan.frame.brs", "esi": "tcpcan.frame.esi"}
        checked = 0
        for (mode, data, text), m in zip(self.good, messages):
            expected = description_fields(text)
            with self.subTest(vector=text):
                self.assertEqual(int(m.one("tcpcan.prefix"), 16), data[0])
                self.assertEqual(int(m.one("tcpcan.length")), data[1])
                if expected["kind"] == "f":
                    self.assertEqual(int(m.one("tcpcan.frame.id"), 16), int(expected["id"], 16))
                    self.assertEqual(int(m.one("tcpcan.frame.len")), int(expected["len"]))
                    for flag, field in flag_fields.items():
                        self.assertEqual(m.one(field) == "1", flag in expected["flags"], flag)
                    self.assertEqual(m.one("tcpcan.frame.seq"), expected.get("seq"))
                    self.assertEqual(m.one("tcpcan.frame.timestamp"), expected.get("ts"))
                    data_show = m.one("tcpcan.frame.data")
                    self.assertEqual((data_show or "").replace(":", "").upper(), expected.get("data", ""))
                    checked += 1
                elif expected["kind"] == "d":
                    self.assertEqual(int(m.one("tcpcan.frame.id"), 16), int(expected["id"], 16))
                    self.assertEqual(int(m.one("tcpcan.frame.len")), int(expected["len"]))
                    can_id = int(m.one("tcpcan.d.can_id"), 16)
                    self.assertEqual(can_id, int.from_bytes(data[2:6], "little"))
                    checked += 1
                elif expected["kind"] == "v":
                    self.assertEqual(int(m.one("tcpcan.version")), int(expected["kind"] and text.split()[1]))
                elif expected["kind"] in ("p", "q"):
                    self.assertEqual(int(m.one("tcpcan.token"), 16), int(text.split()[1], 16))
                elif expected["kind"] == "h":
                    bits = int(text.split()[1], 16)
                    self.assertEqual(int(m.one("tcpcan.features"), 16), bits)
                    self.assertEqual(m.one("tcpcan.features.seq"), "1" if bits & 1 else "0")
                    self.assertEqual(m.one("tcpcan.features.ts"), "1" if bits & 2 else "0")
                elif expected["kind"] == "s":
                    entries = text.split()[2:]
                    self.assertEqual(m.fields.get("tcpcan.subscribe.entry", []), entries)
                    self.assertEqual(m.one("tcpcan.subscribe.op"), "0" if text.split()[1] == "replace" else "1")
                elif expected["kind"] == "c":
                    reason, quoted = re.match(r'^c (\d+) "(.*)"$', text).groups()
                    self.assertEqual(m.one("tcpcan.close.reason"), reason)
                    self.assertEqual(m.one("tcpcan.close.text"), quoted if quoted else None)
                elif expected["kind"] == "skip":
                    self.assertEqual(m.one("tcpcan.skipped").replace(":", ""), data[2:].hex())
        self.assertGreater(checked, 15)

    def test_version_1_frames_reach_wiresharks_can_dissectors(self):
        v1 = [(data, text) for mode, data, text in self.good if text.startswith("d ")]
        messages, others = decode(split(b"".join(data for data, _ in v1), 11))
        self.assertEqual(len(messages), len(v1))
        self.assertEqual([name for name, _ in others],
                         ["canfd" if len(data) == 74 else "can" for data, _ in v1])
        for (data, text), (_, can) in zip(v1, others):
            expected = description_fields(text)
            with self.subTest(vector=text):
                self.assertEqual(can.one("can.flags.err") or "0", "1" if "err" in expected["flags"] else "0")
                if "err" not in expected["flags"]:  # an error frame's id is its error class
                    self.assertEqual(int(can.one("can.id")), int(expected["id"], 16))
                    self.assertEqual(can.one("can.flags.xtd"), "1" if "ext" in expected["flags"] else "0")
                    self.assertEqual(int(can.one("can.len")), int(expected["len"]))

    def test_malformed_messages_are_named(self):
        # Every bad vector keeps its length byte right, so they can share one stream.
        cases = [(data, error) for mode, data, error in self.bad
                 if error in STATELESS_ERRORS and not (mode == "v2" and data[0] == 0x64)]
        self.assertGreater(len(cases), 15)
        messages, _ = decode(split(b"".join(data for data, _ in cases), 9))
        self.assertEqual([m.fields.get("tcpcan.error") for m in messages], [[error] for _, error in cases])

    def test_both_directions_reassembled_apart(self):
        # PROTOCOL.md's "both speak 2" transcript, then 'h' and 'p' split across segments
        # that interleave with the other direction's.
        client = [bytes.fromhex("760400000002"), bytes.fromhex("68040000"), bytes.fromhex("0003700401"),
                  bytes.fromhex("020304")]
        server = [bytes.fromhex("760400000002"), bytes.fromhex("6804000000"), bytes.fromhex("03")]
        segments = [("O", client[0]), ("I", server[0]), ("O", client[1]), ("I", server[1]),
                    ("O", client[2]), ("I", server[2]), ("O", client[3])]
        messages, _ = decode(segments)
        by_port = {}
        for m in messages:
            by_port.setdefault(m.source_port, []).append(m.one("tcpcan.summary"))
        self.assertEqual(len(by_port), 2, by_port)
        self.assertIn(["v 2", "h 00000003", "p 01020304"], by_port.values())
        self.assertIn(["v 2", "h 00000003"], by_port.values())
        self.assertEqual([m.fields.get("tcpcan.error") for m in messages], [None] * len(messages))

    def test_messages_not_allowed_in_the_connections_state(self):
        # PROTOCOL.md's bad vectors whose error depends on the state, each after a captured
        # negotiation (both directions) that puts the receiver in the vector's mode.
        before = {
            # client proposed 2, the server proposed 1: no agreement yet
            "neg": [("O", bytes.fromhex("760400000002")), ("I", bytes.fromhex("760400000001"))],
            "v1": [("O", bytes.fromhex("760400000001")), ("I", bytes.fromhex("760400000001"))],
            "v2": [("O", bytes.fromhex("760400000002")), ("I", bytes.fromhex("760400000002")),
                   ("I", bytes.fromhex("680400000000")), ("O", bytes.fromhex("680400000000"))],
        }
        cases = [(mode, data, error) for mode, data, error in self.bad
                 if error.startswith("not_allowed") or (mode == "v2" and data[0] == 0x64)]
        self.assertGreaterEqual(len(cases), 6)
        for mode, data, error in cases:
            with self.subTest(mode=mode, vector=data.hex(), error=error):
                messages, _ = decode(before[mode] + [("O", data[:3]), ("O", data[3:])])
                errors = [m.fields.get("tcpcan.error") for m in messages]
                self.assertEqual(errors, [None] * len(before[mode]) + [[error]])

    def test_a_message_cut_off_by_the_capture_end_is_not_shown_whole(self):
        whole = self.good[0][1]
        messages, _ = decode([whole, b"\x66\x09\x00\x00"])
        self.assertEqual([m.one("tcpcan.summary") for m in messages], [self.good[0][2]])


def main(argv):
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--lua", required=True)
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--tshark", default="tshark")
    parser.add_argument("--text2pcap", default="text2pcap")
    ARGS, rest = parser.parse_known_args(argv[1:])
    ARGS.lua = os.path.abspath(ARGS.lua)
    loader = unittest.TestLoader()
    module = sys.modules[__name__]
    suite = loader.loadTestsFromNames(rest, module) if rest else loader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = max(0, result.testsRun - failed - len(result.skipped) - len(result.expectedFailures))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

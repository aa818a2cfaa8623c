#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from the PROTOCOL.md test vectors.

Each target reads its input in its own layout (see the comment at the top of each
fuzz_<target>.cpp); the helpers below write those layouts. The output is deterministic,
so running this again after PROTOCOL.md changes gives a clean diff. Old seeds are removed.

    python3 fuzz/make_corpus.py
"""

import pathlib
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent
PROTOCOL = HERE.parent / "PROTOCOL.md"
CORPUS = HERE / "corpus"


def read_vectors():
    """[(good, mode, bytes, description)] from every ```vectors block."""
    vectors = []
    in_block = False
    for line in PROTOCOL.read_text().splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```vectors"
            continue
        if not in_block or not line.strip():
            continue
        head, description = line.split("|", 1)
        kind, mode, *hex_bytes = head.split()
        vectors.append((kind == "good", mode, bytes(int(h, 16) for h in hex_bytes), description.strip()))
    return vectors


def u16(v):
    return struct.pack(">H", v)


def u32(v):
    return struct.pack(">I", v)


def version_msg(v):
    return b"v\x04" + u32(v)


def features_msg(bits):
    return b"h\x04" + u32(bits)


def write_seeds(target, seeds):
    folder = CORPUS / target
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    assert len(seeds) < 100, f"{target}: keep the corpus small"
    for name, data in seeds.items():
        (folder / name).write_bytes(data)
    print(f"{target}: {len(seeds)} seeds")


# ---- fuzz_decoder: mode byte, 4 split bytes, stream ------------------------------------

MODE = {"neg": 0, "v1": 1, "v2": 2}
WHOLE = bytes([255] * 4)


def decoder_seeds(vectors):
    seeds = {}
    for i, (good, mode, data, _) in enumerate(vectors):
        seeds[f"{mode}-{'good' if good else 'bad'}-{i:02d}"] = bytes([MODE[mode]]) + WHOLE + data
    for mode in MODE:
        stream = b"".join(d for good, m, d, _ in vectors if good and m == mode)
        seeds[f"{mode}-all-whole"] = bytes([MODE[mode]]) + WHOLE + stream
        seeds[f"{mode}-all-bytewise"] = bytes([MODE[mode], 1, 1, 1, 1]) + stream
        seeds[f"{mode}-all-mixed"] = bytes([MODE[mode], 3, 0, 7, 255]) + stream
    # Follow negotiation (mode bit 2) into each version.
    for version, mode in ((1, "v1"), (2, "v2")):
        stream = version_msg(version) + b"".join(d for good, m, d, _ in vectors if good and m == mode)
        seeds[f"follow-{mode}"] = bytes([4, 2, 5, 0, 255]) + stream
    return seeds


# ---- fuzz_session: 10-byte header, then operations --------------------------------------

def session_header(server=False, v1_only=False, refuse=False, big=False, features=1,
                   timeout=0, heartbeat=0, dead=0, age=0, now=1000, ask_bus=False, refuse_bus=False):
    flags = ((1 if server else 0) | (2 if v1_only else 0) | (4 if refuse else 0) | (8 if big else 0)
             | (0x10 if ask_bus else 0) | (0x20 if refuse_bus else 0))
    return bytes([flags, features, timeout, heartbeat, dead, age]) + u32(now)


def s_peer(data):
    """Raw peer bytes, in pieces of at most 255."""
    out = b""
    for at in range(0, len(data), 255):
        piece = data[at:at + 255]
        out += bytes([0, len(piece)]) + piece
    return out


def s_tick(step):
    return bytes([2]) + u16(step)


def s_send(frame_payload, copies=1):
    """A local frame laid out as an 'f' payload (flags, id, len, [seq], [ts], data)."""
    return bytes([3, (copies - 1) << 3]) + frame_payload


def s_consume(n=0xFFFF):
    return bytes([4]) + u16(n)


def s_bus(n=7):
    return bytes([5, n])


def s_events():
    return bytes([6, 0])


def s_close(reason, text=b""):
    return bytes([7, reason, len(text)]) + text


def s_subscribe(entries):
    out = bytes([9, len(entries)])
    for kind, a, b in entries:
        out += bytes([kind]) + u32(a) + u32(b)
    return out


def frame_flags(payload):
    return payload[2] & 0xC0  # 0x40 sequence present, 0x80 timestamp present


def session_seeds(vectors):
    seeds = {}
    frames = [d for good, m, d, _ in vectors if good and m == "v2" and d[0] == ord("f")]
    others = [d for good, m, d, _ in vectors if good and m == "v2" and d[0] not in b"fhcs"]
    peer_subscriptions = [d for good, m, d, _ in vectors if good and m == "v2" and d[0] == ord("s")]
    d_frames = [d for good, m, d, _ in vectors if good and m == "v1"]
    local = [f[2:] for f in frames]
    subscription = s_subscribe([(0, 0x100, 0x1FF), (6, 0x123, 0x7FF), (5, 0x1ABCDEF, 0x1FFFFFFF)])

    # Version 2 with each feature set: handshake, every frame vector that fits, the rest.
    for features in range(4):
        wanted = (0x40 if features & 1 else 0) | (0x80 if features & 2 else 0)
        fitting = b"".join(f for f in frames if frame_flags(f) == wanted)
        for server in (False, True):
            script = session_header(server=server, features=features, heartbeat=50, dead=100)
            script += s_peer(version_msg(2) + features_msg(features)) + s_consume()
            script += s_peer(fitting + b"".join(others)) + subscription
            script += b"".join(s_send(p) for p in local) + s_consume(40) + s_bus() + s_tick(600) + s_events()
            # The peer's subscription last, so the frames above are not filtered out.
            script += s_peer(b"".join(peer_subscriptions)) + b"".join(s_send(p) for p in local)
            script += s_consume() + s_peer(b"p\x04\x00\x00\x00\x05") + s_tick(3000) + s_close(0, b"bye") + s_consume()
            seeds[f"v2-features{features}-{'server' if server else 'client'}"] = script

    # Version 1 both ways.
    for server in (False, True):
        script = session_header(server=server, v1_only=True)
        script += s_peer(version_msg(1)) + s_peer(b"".join(d_frames)) + s_bus()
        script += b"".join(s_send(p) for p in local) + s_consume(100) + s_events() + bytes([8])
        seeds[f"v1-{'server' if server else 'client'}"] = script

    # The negotiation transcripts of PROTOCOL.md 2, and their timeouts.
    seeds["neg-client2-server1"] = session_header() + s_peer(version_msg(1)) + s_consume() + s_events()
    seeds["neg-server2-client1"] = session_header(server=True) + s_peer(version_msg(1)) + s_consume()
    seeds["neg-no-common"] = session_header() + s_peer(version_msg(0)) + s_events()
    seeds["neg-timeout"] = session_header(timeout=5) + s_tick(500) + s_tick(600) + s_events()
    seeds["neg-retry-v1"] = session_header() + s_consume() + bytes([8]) + s_events()
    seeds["v2-big-burst"] = (session_header(big=True) + s_peer(version_msg(2) + features_msg(1))
                             + s_send(local[0], copies=16) * 40 + s_consume(5000) + s_send(local[1], 16) * 8)

    # The bus request (PROTOCOL.md 4.7): a client asking, answered or not offered; a server
    # accepting or refusing; a request where BUS is not agreed.
    bus_can1 = b"b\x04can1"
    seq_frame = next(f for f in frames if frame_flags(f) == 0x40)
    seeds["bus-client-answered"] = (session_header(ask_bus=True, timeout=5) + s_consume()
                                    + s_peer(version_msg(2) + features_msg(9)) + s_consume()
                                    + s_peer(bus_can1) + s_send(local[0]) + s_consume() + s_tick(600) + s_events())
    seeds["bus-client-not-offered"] = (session_header(ask_bus=True) + s_peer(version_msg(2) + features_msg(1))
                                       + s_consume() + s_events())
    seeds["bus-client-v1"] = session_header(ask_bus=True) + s_peer(version_msg(1)) + s_consume() + s_events()
    seeds["bus-client-wrong-answer"] = (session_header(ask_bus=True) + s_peer(version_msg(2) + features_msg(9))
                                        + s_peer(b"b\x04can2") + s_consume() + s_events())
    for refuse_bus in (False, True):
        seeds[f"bus-server-{'refuses' if refuse_bus else 'accepts'}"] = (
            session_header(server=True, features=9, timeout=5, refuse_bus=refuse_bus)
            + s_peer(version_msg(2) + features_msg(9) + bus_can1 + seq_frame) + s_consume() + s_bus()
            + s_tick(600) + s_events() + s_peer(bus_can1) + s_consume() + s_events())
    seeds["bus-server-not-agreed"] = (session_header(server=True, features=1) + s_peer(version_msg(2) + features_msg(9))
                                      + s_peer(bus_can1) + s_consume() + s_events())
    seeds["bus-server-timeout"] = (session_header(server=True, features=9, timeout=5)
                                   + s_peer(version_msg(2) + features_msg(9)) + s_tick(600) + s_tick(600) + s_events())

    # Each bad vector arriving in an established session.
    for i, (good, mode, data, _) in enumerate(vectors):
        if good:
            continue
        if mode == "neg":
            script = session_header()
        elif mode == "v1":
            script = session_header(v1_only=True) + s_peer(version_msg(1))
        else:
            script = session_header(features=0) + s_peer(version_msg(2) + features_msg(0))
        seeds[f"bad-{mode}-{i:02d}"] = script + s_peer(data) + s_events() + s_consume()
    return seeds


# ---- fuzz_session_pair: 15-byte header, then operations ----------------------------------

def pair_header(v1_a=False, v1_b=False, features_a=1, features_b=1, heartbeat=0, age=0, now=1000):
    flags = (1 if v1_a else 0) | (2 if v1_b else 0)
    per_side = bytes([0, heartbeat, 0, age])
    return bytes([flags, features_a, features_b]) + per_side + per_side + u32(now)


def p_op(side, op):
    return bytes([side | (op << 1)])


def p_send(side, payload, copies=1):
    return p_op(side, 0) + payload + bytes([copies - 1])


def p_write(side, n):
    return p_op(side, 1) + u16(n)


def p_deliver(side, n):
    return p_op(side, 2) + u16(n)


def p_pump(chunk=255):
    return p_op(0, 9) + bytes([chunk - 1])


def pair_seeds(vectors):
    seeds = {}
    local = [d[2:] for good, m, d, _ in vectors if good and m == "v2" and d[0] == ord("f")]
    for v1_a, v1_b in ((False, False), (False, True), (True, False), (True, True)):
        for features in (0, 1, 3):
            name = f"pair-{'1' if v1_a else '2'}{'1' if v1_b else '2'}-features{features}"
            script = pair_header(v1_a, v1_b, features, features) + p_pump()
            script += b"".join(p_send(i % 2, p) for i, p in enumerate(local))
            # Odd splits: 7 bytes out, 3 bytes in, then the rest.
            script += p_write(0, 7) + p_deliver(0, 3) + p_write(1, 7) + p_deliver(1, 3) + p_pump(16)
            script += p_op(0, 4) + bytes([15]) + p_op(1, 4) + bytes([15])
            seeds[name] = script
    subscribe = p_op(1, 8) + bytes([2]) + bytes([0]) + u32(0x100) + u32(0x1FF) + bytes([6]) + u32(0x123) + u32(0x7FF)
    seeds["pair-subscription"] = (pair_header() + p_pump() + subscribe + p_pump()
                                  + b"".join(p_send(0, p) for p in local) + p_pump(40))
    seeds["pair-stall"] = (pair_header(heartbeat=10) + p_pump() + p_send(0, local[0], 8) * 30
                           + p_op(0, 3) + u16(200) + p_pump(3))
    seeds["pair-close"] = (pair_header() + p_pump() + p_send(0, local[1], 4) + p_op(0, 6) + bytes([1, 3]) + b"bye"
                           + p_send(1, local[2], 4) + p_pump(9))
    return seeds


# ---- fuzz_negotiation ---------------------------------------------------------------------

def negotiation_seeds():
    seeds = {}
    for name, a, b in (("both-2", (1, 2), (1, 2)), ("client-2-server-1", (1, 2), (1, 1)),
                       ("client-1-server-2", (1, 1), (1, 2)), ("no-common", (1, 1), (2, 3))):
        seeds[f"pair-{name}"] = bytes([0, a[0] - 1, a[1] - a[0], 6, b[0] - 1, b[1] - b[0], 6])
    for role, name in ((1, "client"), (3, "server")):
        for peer in ((2,), (1,), (0,), (3, 1), (5, 2, 2), (1, 1)):
            seeds[f"peer-{name}-" + "-".join(map(str, peer))] = bytes([role, 1, 1, 8]) + bytes(peer)
    seeds["peer-server-large"] = bytes([3, 1, 1, 8, 0x80]) + u32(0xFFFFFFFF) + bytes([2])
    return seeds


# ---- fuzz_filter_text: prefill byte, text -------------------------------------------------

FILTER_TEXTS = [
    "123", "1ABx", "0x1ABCDEFx", "100-1FF", "100-800", "100/700", "1ABx/1FFFFFFF", "123:7FF", "123~7FF",
    "12345678:1FFFFFFF", "0x", "0x123", "123~7FF,456~7FF", "100-1FF, 123~7FF 1ABCDEFx/1FFFFFFF",
    "# filter file\n100-1FF   # engine\n7DF:7FF\n\n18DAF110x\n", "800", "1FF-100", "12G", "123,,456", "123:",
]


def filter_seeds():
    seeds = {f"text-{i:02d}": bytes([0]) + t.encode() for i, t in enumerate(FILTER_TEXTS)}
    seeds["almost-full"] = bytes([63]) + b"123, 456"
    seeds["full"] = bytes([64]) + b"123"
    return seeds


# ---- fuzz_candump_line: one line ------------------------------------------------------------

CANDUMP_LINES = [
    "123#11223344", "1ABCDE0F#11.22.33", "123#", "123#R", "123#R5", "123##5AABB", "20000080#0000000000000000",
    "123#1122334455667788_E", "123#R8_E", "(1700000000.123456) can0 123#11223344",
    "(1700000000.5)  vcan0   18DAF110#0102 R", "  # a comment", "", "123##0", "123#1.2", "(1.) can0 123#",
]


def candump_frame(payload):
    """The candump text of an 'f' payload, and its timestamp (0 if absent)."""
    flags, can_id, length = payload[0], struct.unpack(">I", payload[1:5])[0], payload[5]
    at, ts = 6, 0
    if flags & 0x40:
        at += 4
    if flags & 0x80:
        ts = struct.unpack(">Q", payload[at:at + 8])[0]
        at += 8
    if flags & 0x04:
        text = f"{can_id | 0x20000000:08X}#"
    else:
        text = f"{can_id:08X}#" if flags & 0x01 else f"{can_id:03X}#"
    if flags & 0x02:
        return text + "R" + (str(length) if length else ""), ts
    if flags & 0x08:
        text += "#" + f"{4 | (1 if flags & 0x10 else 0) | (2 if flags & 0x20 else 0):X}"
    return text + payload[at:at + length].hex().upper(), ts


def candump_seeds(vectors):
    seeds = {f"line-{i:02d}": line.encode() for i, line in enumerate(CANDUMP_LINES)}
    frames = [d[2:] for good, m, d, _ in vectors if good and m == "v2" and d[0] == ord("f")]
    for i, payload in enumerate(frames):
        text, ts = candump_frame(payload)
        seeds[f"frame-{i:02d}"] = text.encode()
        seeds[f"log-{i:02d}"] = f"({ts // 1000000:010d}.{ts % 1000000:06d}) can0 {text}".encode()
    return seeds


def canip_frame(ext, can_id, data, seq=None, ts=None):
    """canip_peer's frame: flags, dlc, id little-endian, 8 data bytes zero-padded, + seq, + ts."""
    out = bytes([1 if ext else 0, len(data)]) + struct.pack("<I", can_id) + bytes(data).ljust(8, b"\0")
    if seq is not None:
        out += u32(seq)
    if ts is not None:
        out += struct.pack(">Q", ts)
    return out


def canip_seeds():
    """fuzz_canip: byte 0 = features | 4 (hello first), byte 1 = read size, then the stream."""
    seq, ts = 1, 2
    f14 = canip_frame(False, 0x123, [0x11, 0x22, 0x33, 0x44])
    f18 = canip_frame(True, 0x18DAF110, range(1, 9), seq=7)
    f26 = canip_frame(False, 0x7FF, [], seq=0x01020304, ts=1700000000123456)
    return {
        "legacy-frames": bytes([0, 31]) + f14 * 3,
        "legacy-split": bytes([0, 0]) + f14 + canip_frame(True, 0x1FFFFFFF, [0xFF] * 8),
        "seq-frames": bytes([seq, 5]) + f18 * 2,
        "seqts-frames": bytes([seq | ts, 7]) + f26 * 2,
        "hello-seq": bytes([seq | 4, 3]) + b"CANIP/4.1 FEAT=SEQ\n" + f18,
        "hello-seqts": bytes([seq | ts | 4, 31]) + b"CANIP/4.1 FEAT=SEQ,TS\n" + f26,
        "hello-none": bytes([seq | 4, 1]) + b"CANIP/4.1\n" + f14,
        "hello-crlf-unknown": bytes([3 | 4, 9]) + b"CANIP/4.1 NAME=pi FEAT=TS,CRC\r\n" + canip_frame(False, 1, [1], ts=5),
        "hello-bad-version": bytes([seq | 4, 31]) + b"CANIP/4.2 FEAT=SEQ\n",
        "hello-not-canip": bytes([4, 31]) + b"HELLO\n",
        "bad-flags": bytes([0, 31]) + f14 + b"\x02" + f14[1:],
        "bad-dlc": bytes([0, 31]) + b"\x00\x09" + f14[2:],
        "bad-id": bytes([0, 31]) + canip_frame(False, 0x800, []),
        "tcpcan-proposal": bytes([0, 31]) + b"v\x04\x00\x00\x00\x02",
    }


def main():
    vectors = read_vectors()
    assert vectors, "no ```vectors blocks in PROTOCOL.md"
    write_seeds("fuzz_decoder", decoder_seeds(vectors))
    write_seeds("fuzz_session", session_seeds(vectors))
    write_seeds("fuzz_session_pair", pair_seeds(vectors))
    write_seeds("fuzz_negotiation", negotiation_seeds())
    write_seeds("fuzz_filter_text", filter_seeds())
    write_seeds("fuzz_candump_line", candump_seeds(vectors))
    write_seeds("fuzz_canip", canip_seeds())


if __name__ == "__main__":
    main()

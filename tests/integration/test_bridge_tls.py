#!/usr/bin/env python3
"""The tcpcan program over TLS 1.3 (issue 9), with the stdio CAN port ('-') on 127.0.0.1:
openssl s_client speaking the tcpcan protocol to `tcpcan server` in PSK and certificate
mode; our client against our server, every frame kind both ways; every refusal named in the
server's log while another client keeps working; per-identity policy (read-only, allow-list,
rate) counted and never reaching the bus or other clients; the command line's checks and the
start-up warning of an exposed plaintext server.

Keys and certificates are made at test time with `openssl` (test_tls.Keys); the frames
helpers come from test_bridge.py.

Usage: test_bridge_tls.py --tcpcan PATH [unittest names, e.g. TestTlsFrames]
Exits 77 (skip) without the openssl program.
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

import test_bridge
import test_tls
from test_bridge import (FRAME_EXPECTED, FRAME_INPUT, BridgeTest, f_message, free_port, parse_stats)

KEYS = None

PROPOSAL_V2 = bytes.fromhex("760400000002")  # 'v', length 4, version 2
NO_FEATURES = bytes.fromhex("680400000000")  # 'h', length 4, no features: frames carry no sequence number
EXTENDED_F = b"f\x07" + struct.pack(">BIB", 0x01, 0x1ABCDE0F, 1) + b"\x01"  # EXT flag, 1ABCDE0F#01


def psk_server_args():
    return ["--tls-psk-file", KEYS.server_psk]


def cert_args(name):
    return KEYS.cert_args(name)


class TlsBridgeTest(BridgeTest):
    def start_tls_server(self, port, mode, extra=()):
        return self.start_server(port, list(mode) + list(extra))

    def s_client(self, port, *mode):
        process = test_tls.s_client(port, *mode)
        self.addCleanup(process.stop)
        return process

    def assert_err(self, proc, pattern, message=""):
        self.assertTrue(proc.wait_err(pattern), "%s: no log line matching %r %s%s" % (proc.name, pattern, message,
                                                                                      self.logs()))

    def still_serving(self, server, good, tag):
        """The good client still gets bus frames and still reaches the bus."""
        self.assertTrue(good.running(), "the good client ended" + self.logs())
        before_server, before_good = list(server.frames()), list(good.frames())
        server.send(["%s#01" % tag])
        good.send(["%s#02" % tag])
        self.wait_frames(good, before_good + ["%s#01" % tag])
        self.wait_frames(server, before_server + ["%s#02" % tag])


# ---------------------------------------------------------------------------------------
class TestTlsFrames(TlsBridgeTest):
    """Our client against our server over TLS: every frame kind both ways, byte for byte."""

    def exchange(self, server_mode, client_mode, server_identity, client_identity):
        port = free_port()
        server = self.start_tls_server(port, server_mode)
        self.assertIn("TLS 1.3", server.err(), self.logs())
        self.assertNotIn("without TLS", server.err(), self.logs())
        client = self.start_client(port, client_mode)
        self.wait_agreed(server, 2)
        # The authenticated identity names the peer.
        self.assert_err(server, r"127\.0\.0\.1:\d+ \[%s\]: version 2 agreed" % re.escape(client_identity))
        self.assert_err(client, r"127\.0\.0\.1:%d \[%s\]: version 2 agreed" % (port, re.escape(server_identity)))
        server.send(FRAME_INPUT)
        client.send(FRAME_INPUT)
        self.wait_frames(server, FRAME_EXPECTED)
        self.wait_frames(client, FRAME_EXPECTED)
        s_stats, c_stats = self.stop(server, client)
        n = len(FRAME_EXPECTED)
        for who, st in (("server", s_stats), ("client", c_stats)):
            for key in ("from_bus", "to_bus", "sent", "received"):
                self.assertEqual(st[key], n, "%s %s%s" % (who, key, self.logs()))
            self.assertEqual(st["dropped"], 0, who + self.logs())
            self.assertEqual(st["tls_refused"], 0, who + self.logs())

    def test_psk(self):
        self.exchange(psk_server_args(), ["--tls-psk-file", KEYS.pi_psk], "pi-bench", "pi-bench")

    def test_certificates(self):
        # The client verifies the server's certificate against 127.0.0.1 (its subjectAltName).
        self.exchange(cert_args("server"), cert_args("client"), "localhost", "pi-bench")

    def test_certificates_with_server_name(self):
        self.exchange(cert_args("server"), cert_args("client") + ["--tls-server-name", "localhost"], "localhost",
                      "pi-bench")


class TestTlsOpensslClient(TlsBridgeTest):
    """An independent TLS peer, openssl s_client, writing tcpcan protocol bytes."""

    def talk(self, mode, client_mode):
        port = free_port()
        server = self.start_tls_server(port, mode)
        other = self.start_client(port, client_mode, name="other")  # sees what s_client sends
        client = self.s_client(port, *client_mode_to_s_client(client_mode))
        client.send(PROPOSAL_V2)
        reply = client.wait_bytes(12)
        self.assertEqual(reply[:6], PROPOSAL_V2, "the server's version answer" + self.logs())
        self.assertEqual(reply[6:8], b"h\x04", "the server's feature offer" + self.logs())
        client.take_output()
        client.send(NO_FEATURES + f_message(0x123, b"\x11\x22") + EXTENDED_F)
        self.assert_err(server, r"127\.0\.0\.1:\d+ \[pi-bench\]: features agreed", "(s_client)")
        self.wait_frames(server, ["123#1122", "1ABCDE0F#01"])
        self.wait_frames(other, ["123#1122", "1ABCDE0F#01"])
        server.send(["456#AB", "7FF#R2"])
        expected = f_message(0x456, b"\xab")
        data = client.wait_bytes(len(expected) + 8)
        self.assertTrue(data.startswith(expected), "frame to s_client: %r%s" % (data, self.logs()))
        self.wait_frames(other, ["123#1122", "1ABCDE0F#01", "456#AB", "7FF#R2"])
        s_stats = self.stop(server, other)[0]
        self.assertEqual(s_stats["to_bus"], 2, self.logs())
        self.assertEqual(s_stats["received"], 2, self.logs())

    def test_psk(self):
        self.talk(psk_server_args(), ["--tls-psk-file", KEYS.pi_psk])

    def test_certificates(self):
        self.talk(cert_args("server"), cert_args("client"))


def client_mode_to_s_client(mode):
    if mode[0] == "--tls-psk-file":
        return ["-psk", KEYS.pi_key, "-psk_identity", "pi-bench"]
    return ["-cert", KEYS.path("client.pem"), "-key", KEYS.path("client.key"), "-CAfile", KEYS.path("ca.pem"),
            "-verify_return_error", "-verify_hostname", "localhost"]


# ---------------------------------------------------------------------------------------
class TestTlsRefusals(TlsBridgeTest):
    """Each refusal is named in the server's log while an authenticated client keeps working."""

    def start_psk(self, extra=()):
        port = free_port()
        server = self.start_tls_server(port, psk_server_args(), ["--stats", "0.2"] + list(extra))
        good = self.start_client(port, ["--tls-psk-file", KEYS.pi_psk], name="good")
        return port, server, good

    def start_certificates(self):
        port = free_port()
        server = self.start_tls_server(port, cert_args("server"), ["--stats", "0.2"])
        good = self.start_client(port, cert_args("client"), name="good")
        return port, server, good

    def refused_client(self, port, mode, name):
        client = self.start_client(port, list(mode) + ["--no-retry"], name=name, version=None)
        self.assertEqual(client.wait(), 1, "%s exit status%s" % (name, self.logs()))
        return client

    def test_wrong_key(self):
        port, server, good = self.start_psk()
        ours = self.refused_client(port, ["--tls-psk-file", KEYS.wrong_key_psk], "wrong-key")
        self.assert_err(server, r"127\.0\.0\.1:\d+: refused: wrong pre-shared key for identity 'pi-bench'")
        self.assert_err(ours, r"refused: the server refused the handshake .*wrong pre-shared key")
        self.s_client(port, "-psk", os.urandom(32).hex(), "-psk_identity", "pi-bench")
        self.assertTrue(server.wait_err(r"refused: wrong pre-shared key", count=2), self.logs())
        self.assertTrue(server.wait_err(r"stats: .*tls_refused=2\b"), self.logs())
        self.still_serving(server, good, "101")

    def test_unknown_identity(self):
        port, server, good = self.start_psk()
        self.refused_client(port, ["--tls-psk-file", KEYS.intruder_psk], "intruder")
        self.assert_err(server, r"refused: unknown PSK identity 'intruder'")
        self.still_serving(server, good, "102")

    def test_certificate_from_another_ca(self):
        port, server, good = self.start_certificates()
        self.s_client(port, "-cert", KEYS.path("stranger.pem"), "-key", KEYS.path("stranger.key"),
                      "-CAfile", KEYS.path("ca.pem"))
        self.assert_err(server, r"refused: the client's certificate is not accepted: unable to get local issuer "
                                r"certificate \(subject CN=pi-bench\)")
        ours = self.refused_client(port, ["--tls-cert", KEYS.path("stranger.pem"), "--tls-key",
                                          KEYS.path("stranger.key"), "--tls-ca", KEYS.path("ca.pem")], "stranger")
        self.assertTrue(server.wait_err(r"refused: the client's certificate is not accepted", count=2), self.logs())
        self.assert_err(ours, r"the server does not accept our certificate")
        self.still_serving(server, good, "103")

    def test_expired_certificate(self):
        port, server, good = self.start_certificates()
        self.refused_client(port, cert_args("expired"), "expired")
        self.assert_err(server, r"refused: the client's certificate is not accepted: certificate has expired")
        self.still_serving(server, good, "104")

    def test_no_client_certificate(self):
        port, server, good = self.start_certificates()
        self.s_client(port, "-CAfile", KEYS.path("ca.pem"))
        self.assert_err(server, r"refused: the client sent no certificate; this server requires one signed by its CA")
        self.still_serving(server, good, "105")

    def test_plaintext_client_on_a_tls_port(self):
        port, server, good = self.start_psk()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(PROPOSAL_V2)
            self.assert_err(server, r"127\.0\.0\.1:\d+: refused: a plaintext client on a TLS port: its first byte is "
                                    r"0x76 \('v', a tcpcan version proposal\)")
            self.assertTrue(test_tls.closed_by_peer(raw), "nothing may be sent in clear" + self.logs())
        # Our own plaintext client is told that the server may want TLS.
        plain = self.start_client(port, ["--no-retry"], name="plain", version=None)
        self.assert_err(plain, r"a server that requires TLS closes a plaintext client the same way")
        self.assertTrue(server.wait_err(r"refused: a plaintext client on a TLS port", count=2), self.logs())
        self.still_serving(server, good, "106")

    def test_tls_client_on_a_plaintext_port(self):
        port = free_port()
        server = self.start_server(port, ["--stats", "0.2"])
        good = self.start_client(port, name="good")
        ours = self.refused_client(port, ["--tls-psk-file", KEYS.pi_psk], "tls-client")
        self.assert_err(server, r"127\.0\.0\.1:\d+: refused: a TLS ClientHello arrived on a plaintext port")
        self.assert_err(ours, r"refused: the server closed the connection during the TLS handshake")
        self.s_client(port, "-psk", KEYS.pi_key, "-psk_identity", "pi-bench")
        self.assertTrue(server.wait_err(r"refused: a TLS ClientHello arrived", count=2), self.logs())
        self.still_serving(server, good, "107")

    def test_handshake_that_never_finishes(self):
        port, server, good = self.start_psk(["--negotiation-timeout", "1"])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent, \
                socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
            stalled.sendall(bytes.fromhex("16030102000100"))  # the first 7 bytes of a ClientHello
            self.assertTrue(server.wait_err(r"refused: TLS handshake did not finish within 1000 ms", count=2),
                            self.logs())
            self.assertTrue(test_tls.closed_by_peer(silent), self.logs())
            self.assertTrue(test_tls.closed_by_peer(stalled), self.logs())
        self.still_serving(server, good, "108")

    def test_handshake_flood_is_bounded(self):
        port, server, good = self.start_psk(["--max-pending", "3", "--negotiation-timeout", "2"])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        try:
            self.assertTrue(server.wait_err(r"refused: 3 TLS handshakes already under way", count=2), self.logs())
            self.assertTrue(server.wait_err(r"stats: .*handshakes_full=2\b"), self.logs())
            self.still_serving(server, good, "109")
            # Once the idle ones timed out, a new client gets a slot.
            self.assertTrue(server.wait_err(r"refused: TLS handshake did not finish", count=3), self.logs())
            late = self.start_client(port, ["--tls-psk-file", KEYS.pi_psk], name="late")
            server.send(["10A#0A"])
            self.wait_frames(late, ["10A#0A"])
        finally:
            for s in idle:
                s.close()


# ---------------------------------------------------------------------------------------
class TestTlsPolicy(TlsBridgeTest):
    """Per-identity policy from --policy-file: refused frames are counted per cause and reach
    neither the bus nor other clients."""

    def setUp(self):
        super().setUp()
        self.desktop_psk = KEYS.secret("desktop.psk", "desktop:%s\n" % KEYS.desktop_key)

    def policy(self, text):
        path = os.path.join(self.tmpdir, "policy.ini")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_read_only_identity_and_allow_list(self):
        port = free_port()
        policy = self.policy("# test\n[pi-bench]\nread-only\n\n[desktop]\nallow = 7DF, 7E0-7EF\n")
        server = self.start_tls_server(port, psk_server_args(), ["--policy-file", policy, "--stats", "0.2"])
        self.assertIn("2 client policies", server.err(), self.logs())
        reader = self.start_client(port, ["--tls-psk-file", KEYS.pi_psk], name="reader")
        desktop = self.start_client(port, ["--tls-psk-file", self.desktop_psk], name="desktop")
        self.wait_agreed(server, 2, count=2)
        reader.send(["7DF#01", "123#02", "1ABCDE0F#03"])
        desktop.send(["7DF#0201", "123#01", "7E8#02", "1ABCDE0F#03", "20000080#0000000000000000"])
        self.wait_frames(server, ["7DF#0201", "7E8#02"])
        self.wait_frames(reader, ["7DF#0201", "7E8#02"])
        self.assertTrue(server.wait_err(r"stats: .*read_only=3 not_allowed=3 rate_limited=0"), self.logs())
        self.assertTrue(server.wait_err(r"stats for peer 127\.0\.0\.1:\d+ \[pi-bench\]: sent=\d+ received=3 read_only=3 "
                                        r"not_allowed=0"), self.logs())
        self.assertTrue(server.wait_err(r"stats for peer 127\.0\.0\.1:\d+ \[desktop\]: sent=\d+ received=5 read_only=0 "
                                        r"not_allowed=3"), self.logs())
        self.assert_err(server, r"\[pi-bench\]: 3 frames refused by its policy")
        # The bus still reaches both.
        server.send(["555#55"])
        self.wait_frames(reader, ["7DF#0201", "7E8#02", "555#55"])
        self.wait_frames(desktop, ["555#55"])
        s_stats = self.stop(server, reader, desktop)[0]
        self.assertEqual(server.frames(), ["7DF#0201", "7E8#02"], self.logs())
        self.assertEqual(s_stats["to_bus"], 2, self.logs())
        self.assertEqual(s_stats["read_only"], 3, self.logs())
        self.assertEqual(s_stats["not_allowed"], 3, self.logs())

    def test_rate_limit_holds(self):
        port = free_port()
        policy = self.policy("[*]\nrate = 1\nburst = 5\n")
        server = self.start_tls_server(port, psk_server_args(), ["--policy-file", policy, "--stats", "0.2"])
        client = self.start_client(port, ["--tls-psk-file", KEYS.pi_psk])
        started = time.monotonic()
        client.send(["%03X#01" % (0x100 + i) for i in range(40)])
        self.assertTrue(server.wait_err(r"stats: from_bus.* received=40 "), self.logs())
        elapsed = time.monotonic() - started
        s_stats = self.stop(server, client)[0]
        passed = s_stats["to_bus"]
        # At most burst + rate x elapsed frames pass; every other one is counted.
        self.assertGreaterEqual(passed, 5, self.logs())
        self.assertLessEqual(passed, 5 + int(elapsed) + 1, self.logs())
        self.assertEqual(passed + s_stats["rate_limited"], 40, self.logs())
        self.assertEqual(server.frames(), ["%03X#01" % (0x100 + i) for i in range(passed)], self.logs())

    def test_identity_without_a_section_gets_the_server_wide_policy(self):
        port = free_port()
        policy = self.policy("[desktop]\nread-only\n")
        server = self.start_tls_server(port, psk_server_args(), ["--policy-file", policy, "--allow-transmit", "100"])
        client = self.start_client(port, ["--tls-psk-file", KEYS.pi_psk])
        client.send(["100#01", "200#02", "100#03"])
        self.wait_frames(server, ["100#01", "100#03"])
        s_stats = self.stop(server, client)[0]
        self.assertEqual(s_stats["not_allowed"], 1, self.logs())


# ---------------------------------------------------------------------------------------
class TestTlsCommandLine(TlsBridgeTest):
    def run_tcpcan(self, args, timeout=20):
        done = subprocess.run([test_bridge.TCPCAN] + args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
        return done.returncode, done.stderr

    def assert_usage_error(self, args, *needles):
        rc, err = self.run_tcpcan(args)
        self.assertEqual(rc, 2, err)
        for needle in needles:
            self.assertIn(needle, err)

    def test_inconsistent_options(self):
        server = ["server", "--can", "-", "--bind", "127.0.0.1", "--port", str(free_port())]
        client = ["client", "--can", "-", "--host", "127.0.0.1", "--port", str(free_port()), "--no-retry"]
        self.assert_usage_error(server + ["--tls-psk-file", KEYS.server_psk] + cert_args("server"),
                                "--tls-psk-file and --tls-cert/--tls-key/--tls-ca exclude each other")
        self.assert_usage_error(server + ["--tls-cert", KEYS.path("server.pem"), "--tls-ca", KEYS.path("ca.pem")],
                                "go together; missing: --tls-key")
        self.assert_usage_error(server + cert_args("server") + ["--tls-server-name", "x"], "--tls-server-name is for a client")
        self.assert_usage_error(client + ["--tls-psk-file", KEYS.pi_psk, "--tls-server-name", "x"],
                                "--tls-server-name is for a client with --tls-cert")
        self.assert_usage_error(server + ["--allow-transmit", "7DF", "--allow-transmit", " "],
                                "--allow-transmit ' ': no filter entry (use --read-only to refuse every frame)")
        policy = os.path.join(self.tmpdir, "p.ini")
        with open(policy, "w") as f:
            f.write("[a]\nread-only\n")
        self.assert_usage_error(server + ["--policy-file", policy], "--policy-file names clients by their TLS identity")
        self.assert_usage_error(client + ["--tls-psk-file", KEYS.pi_psk, "--policy-file", policy],
                                "--policy-file is for servers")
        with open(policy, "w") as f:
            f.write("[a]\nread-only\nrate = lots\n")
        self.assert_usage_error(server + ["--tls-psk-file", KEYS.server_psk, "--policy-file", policy],
                                policy + " line 3")

    def test_bad_key_files_stop_the_start(self):
        server = ["server", "--can", "-", "--bind", "127.0.0.1", "--port", str(free_port())]
        path = os.path.join(self.tmpdir, "open.psk")
        with open(path, "w") as f:
            f.write("pi-bench:%s\n" % KEYS.pi_key)
        os.chmod(path, 0o644)
        rc, err = self.run_tcpcan(server + ["--tls-psk-file", path])
        self.assertEqual(rc, 1, err)
        self.assertIn(path + " holds secret keys but is readable or writable by group or others (mode 0644)", err)
        rc, err = self.run_tcpcan(server + ["--tls-cert", KEYS.path("server.pem"), "--tls-key", KEYS.path("client.key"),
                                            "--tls-ca", KEYS.path("ca.pem")])
        self.assertEqual(rc, 1, err)
        self.assertIn("does not belong to the certificate", err)

    def exposure(self, extra, unshare=False):
        """The server's start-up log (up to its listening line and what follows at once)."""
        port = free_port()
        args = ["server", "--can", "-", "--port", str(port)] + extra
        prefix = ["unshare", "-rn"] if unshare else []
        err_path = os.path.join(self.tmpdir, "exposure-%d.err" % port)
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(prefix + [test_bridge.TCPCAN] + args, stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 10
            text = ""
            while time.monotonic() < deadline and proc.poll() is None:
                with open(err_path) as f:
                    text = f.read()
                if "listening on" in text:
                    break
                time.sleep(0.02)
            self.assertIn("listening on", text)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=10), 0)
            with open(err_path) as f:
                return f.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdin.close()

    def test_exposure_warning(self):
        if shutil.which("unshare") is None or subprocess.run(["unshare", "-rn", "true"]).returncode != 0:
            self.skipTest("no unprivileged network namespace: cannot listen beyond loopback safely")
        # Every address, inside a network namespace of our own (nothing outside can reach it).
        text = self.exposure(["--bind", "0.0.0.0"], unshare=True)
        warnings = [line for line in text.splitlines() if "WARNING" in line]
        self.assertEqual(len(warnings), 1, text)
        self.assertIn("listening on 0.0.0.0 port", warnings[0])
        self.assertIn("without TLS: anyone who reaches this port reads every frame on the bus and writes any frame",
                      warnings[0])
        text = self.exposure(["--bind", "0.0.0.0", "--allow-transmit", "7DF"], unshare=True)
        self.assertIn("writes the frames --allow-transmit lets through", text)
        for extra in (["--bind", "0.0.0.0", "--read-only"], ["--bind", "0.0.0.0", "--tls-psk-file", KEYS.server_psk]):
            text = self.exposure(extra, unshare=True)
            self.assertNotIn("WARNING", text, " ".join(extra))
        self.assertNotIn("WARNING", self.exposure(["--bind", "127.0.0.1"]))


def main(argv):
    global KEYS
    args = list(argv[1:])
    if len(args) >= 2 and args[0] == "--tcpcan":
        test_bridge.TCPCAN = os.path.abspath(args[1])
        args = args[2:]
    if not test_bridge.TCPCAN or not os.access(test_bridge.TCPCAN, os.X_OK):
        print(__doc__)
        return 2
    if test_tls.OPENSSL is None:
        print("SKIP: no openssl program")
        return 77
    KEYS = test_tls.Keys()
    test_tls.KEYS = KEYS
    try:
        module = sys.modules[__name__]
        loader = unittest.TestLoader()
        suite = loader.loadTestsFromNames(args, module) if args else loader.loadTestsFromModule(module)
        result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    finally:
        KEYS.remove()
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

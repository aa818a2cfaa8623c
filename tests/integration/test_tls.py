#!/usr/bin/env python3
"""TLS integration tests: the port's Transport (through tests/integration/tls_echo) against
an independent TLS peer (openssl s_client / s_server) and against itself, in PSK and in
certificate mode, over 127.0.0.1; every refusal named in the log while the server keeps
serving its other clients.

Keys and certificates are made at test time with `openssl` in a temporary directory.

Usage: test_tls.py --tls-echo PATH [unittest names, e.g. TestPsk or TestRefusals.test_wrong_key]
Prints unittest's summary; exits non-zero on failure, 77 (skip) without the openssl program.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

TLS_ECHO = ""
OPENSSL = shutil.which("openssl")

WAIT = 10.0  # s: what a test waits for arrives within this (never asserted as a speed)

# tcpcan protocol bytes (PROTOCOL.md): a version-2 proposal, then arbitrary bytes, so the
# stream is what a tcpcan peer would send, plus every byte value.
PROPOSAL_V2 = bytes.fromhex("760400000002")
FEATURES = bytes.fromhex("680400000001")
PAYLOAD = PROPOSAL_V2 + FEATURES + bytes(range(256)) * 4


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_openssl(*args, cwd):
    done = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), done.stderr))


class Keys:
    """Everything the tests need, made in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tcpcan-tls-")
        self.pi_key = os.urandom(32).hex()
        self.desktop_key = os.urandom(16).hex()
        self.server_psk = self.secret("server.psk", "# test keys\npi-bench:%s\ndesktop:%s\n" % (self.pi_key, self.desktop_key))
        self.pi_psk = self.secret("pi.psk", "pi-bench:%s\n" % self.pi_key)
        self.wrong_key_psk = self.secret("wrong.psk", "pi-bench:%s\n" % os.urandom(32).hex())
        self.intruder_psk = self.secret("intruder.psk", "intruder:%s\n" % self.pi_key)
        self.make_certificates()

    def path(self, name):
        return os.path.join(self.dir, name)

    def secret(self, name, text):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def make_ca(self, name, cn):
        run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", name + ".key", "-out", name + ".pem", "-days", "30", "-subj", "/CN=" + cn,
                    cwd=self.dir)

    def make_leaf(self, name, cn, ca, extensions=""):
        run_openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=self.dir)
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write(extensions)
        run_openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                    "-CAcreateserial", "-days", "30", "-out", name + ".pem", "-extfile", ext, cwd=self.dir)
        os.chmod(self.path(name + ".key"), 0o600)

    def make_expired(self, name, cn, ca):
        """A certificate valid only on 1-2 January 2020, through `openssl ca -startdate -enddate`."""
        os.makedirs(self.path("newcerts"), exist_ok=True)
        open(self.path("index.txt"), "w").close()
        with open(self.path("serial"), "w") as f:
            f.write("1000\n")
        with open(self.path("ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = newcerts\n"
                    "serial = serial\ndefault_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n")
        run_openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=self.dir)
        run_openssl("ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".pem", "-keyfile", ca + ".key",
                    "-in", name + ".csr", "-out", name + ".pem", "-notext",
                    "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", cwd=self.dir)
        os.chmod(self.path(name + ".key"), 0o600)

    def make_certificates(self):
        self.make_ca("ca", "tcpcan test CA")
        self.make_ca("other-ca", "some other CA")
        self.make_leaf("server", "localhost", "ca", "subjectAltName = DNS:localhost, IP:127.0.0.1\n")
        self.make_leaf("client", "pi-bench", "ca")
        self.make_leaf("stranger", "pi-bench", "other-ca")
        self.make_expired("expired", "pi-bench", "ca")
        for name in ("ca", "other-ca"):
            os.chmod(self.path(name + ".key"), 0o600)

    def cert_args(self, name):
        return ["--tls-cert", self.path(name + ".pem"), "--tls-key", self.path(name + ".key"),
                "--tls-ca", self.path("ca.pem")]

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


KEYS = None


class Process:
    """A child process whose stdout bytes and stderr lines are collected by threads."""

    def __init__(self, args):
        self.args = args
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._read_out, daemon=True),
                        threading.Thread(target=self._read_err, daemon=True)]
        for t in self.threads:
            t.start()

    def _read_out(self):
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            with self.lock:
                self.out += chunk

    def _read_err(self):
        for line in self.proc.stderr:
            with self.lock:
                self.err.append(line.decode(errors="replace").rstrip("\n"))

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def stderr_text(self):
        with self.lock:
            return "\n".join(self.err)

    def wait_log(self, pattern, timeout=WAIT):
        """The first stderr line matching `pattern`, or None after `timeout`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for line in self.err:
                    if regex.search(line):
                        return line
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the reader thread take the last lines
                with self.lock:
                    return next((line for line in self.err if regex.search(line)), None)
            time.sleep(0.02)
        return None

    def wait_bytes(self, count, timeout=WAIT):
        """stdout once it holds `count` bytes (or what it holds after `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.out) >= count:
                    return bytes(self.out)
            time.sleep(0.02)
        with self.lock:
            return bytes(self.out)

    def take_output(self):
        with self.lock:
            data = bytes(self.out)
            self.out.clear()
            return data

    def wait_exit(self, timeout=WAIT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            if self.wait_exit(5) is None:
                self.proc.kill()
                self.proc.wait()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        for t in self.threads:
            t.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()


def echo_server(port, *mode, extra=()):
    server = Process([TLS_ECHO, "server", "--port", str(port), *mode, *extra])
    if server.wait_log(r"listening on") is None:
        server.stop()
        raise AssertionError("tls_echo server did not start:\n" + server.stderr_text())
    return server


def echo_client(port, *mode, host="127.0.0.1"):
    return Process([TLS_ECHO, "client", "--host", host, "--port", str(port), *mode])


def s_client(port, *mode):
    return Process([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_3", "-quiet", *mode])


def listening(port):
    """Whether something listens on 127.0.0.1:port, read from /proc (no connection made)."""
    want = "0100007F:%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            return any(line.split()[1] == want and line.split()[3] == "0A" for line in f.readlines()[1:])
    except OSError:
        return False


def s_server(port, *mode):
    server = Process([OPENSSL, "s_server", "-accept", "127.0.0.1:%d" % port, "-tls1_3", "-quiet",
                      "-naccept", "1", *mode])
    # s_server prints nothing when quiet, and a probe connection would use up its one accept.
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and not listening(port):
        time.sleep(0.05)
    return server


def closed_by_peer(sock):
    """Whether the server closed `sock` without sending anything (a close with unread bytes
    arrives as a reset)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def psk_args():
    return ["-psk", KEYS.pi_key, "-psk_identity", "pi-bench"]


class Base(unittest.TestCase):
    def setUp(self):
        self.processes = []

    def tearDown(self):
        for p in self.processes:
            p.stop()

    def keep(self, process):
        self.processes.append(process)
        return process

    def assert_log(self, process, pattern):
        line = process.wait_log(pattern)
        self.assertIsNotNone(line, "no log line matching %r in:\n%s" % (pattern, process.stderr_text()))
        return line

    def assert_both_ways(self, server, client, up=PAYLOAD, down=PAYLOAD[::-1]):
        """Bytes written to the client's stdin come out of the server's stdout exactly, and back."""
        client.send(up)
        self.assertEqual(server.wait_bytes(len(up)), up)
        server.send(down)
        self.assertEqual(client.wait_bytes(len(down)), down)
        server.take_output()
        client.take_output()


class TestPsk(Base):
    def test_s_client_against_our_server(self):
        port = free_port()
        server = self.keep(echo_server(port, "--tls-psk-file", KEYS.server_psk))
        client = self.keep(s_client(port, *psk_args()))
        self.assert_log(server, r"client 1: authenticated as 'pi-bench'")
        self.assert_both_ways(server, client)

    def test_our_client_against_s_server(self):
        port = free_port()
        server = self.keep(s_server(port, "-nocert", *psk_args()))
        client = self.keep(echo_client(port, "--tls-psk-file", KEYS.pi_psk))
        self.assert_log(client, r"client 1: authenticated as 'pi-bench'")
        self.assert_both_ways(server, client)

    def test_ours_against_ours_with_a_megabyte_each_way(self):
        port = free_port()
        server = self.keep(echo_server(port, "--tls-psk-file", KEYS.server_psk))
        client = self.keep(echo_client(port, "--tls-psk-file", KEYS.pi_psk))
        self.assert_log(server, r"authenticated as 'pi-bench'")
        self.assert_log(client, r"authenticated as 'pi-bench'")
        self.assert_both_ways(server, client, os.urandom(1 << 20), os.urandom(1 << 20))

    def test_second_identity_of_the_server_file(self):
        port = free_port()
        server = self.keep(echo_server(port, "--tls-psk-file", KEYS.server_psk))
        client = self.keep(s_client(port, "-psk", KEYS.desktop_key, "-psk_identity", "desktop"))
        self.assert_log(server, r"authenticated as 'desktop'")
        self.assert_both_ways(server, client)

    def test_client_close_ends_the_session_cleanly(self):
        port = free_port()
        server = self.keep(echo_server(port, "--tls-psk-file", KEYS.server_psk))
        client = self.keep(echo_client(port, "--tls-psk-file", KEYS.pi_psk))
        self.assert_log(server, r"authenticated as 'pi-bench'")
        server.stop()  # SIGTERM: the client sees the end of the stream
        self.assertEqual(client.wait_exit(), 0, client.stderr_text())
        self.assert_log(client, r"client 1: closed")


class TestCertificates(Base):
    def test_s_client_against_our_server(self):
        port = free_port()
        server = self.keep(echo_server(port, *KEYS.cert_args("server")))
        client = self.keep(s_client(port, "-cert", KEYS.path("client.pem"), "-key", KEYS.path("client.key"),
                                    "-CAfile", KEYS.path("ca.pem"), "-verify_return_error",
                                    "-verify_hostname", "localhost"))
        self.assert_log(server, r"client 1: authenticated as 'pi-bench'")
        self.assert_both_ways(server, client)

    def test_our_client_against_s_server(self):
        port = free_port()
        server = self.keep(s_server(port, "-cert", KEYS.path("server.pem"), "-key", KEYS.path("server.key"),
                                    "-CAfile", KEYS.path("ca.pem"), "-Verify", "1", "-verify_return_error"))
        client = self.keep(echo_client(port, *KEYS.cert_args("client"), "--tls-server-name", "localhost"))
        self.assert_log(client, r"client 1: authenticated as 'localhost'")
        self.assert_both_ways(server, client)

    def test_ours_against_ours_verifying_the_ip_address(self):
        port = free_port()
        server = self.keep(echo_server(port, *KEYS.cert_args("server")))
        client = self.keep(echo_client(port, *KEYS.cert_args("client")))  # verifies 127.0.0.1
        self.assert_log(server, r"authenticated as 'pi-bench'")
        self.assert_log(client, r"authenticated as 'localhost'")
        self.assert_both_ways(server, client, os.urandom(300000), os.urandom(300000))

    def test_client_refuses_a_server_with_another_name(self):
        port = free_port()
        server = self.keep(echo_server(port, *KEYS.cert_args("server")))
        client = self.keep(echo_client(port, *KEYS.cert_args("client"), "--tls-server-name", "can-gateway.example"))
        self.assertEqual(client.wait_exit(), 1)
        self.assert_log(client, r"refused: the server's certificate is not accepted: hostname mismatch")
        self.assert_log(server, r"client 1: refused: the client refused the handshake")

    def test_client_refuses_a_server_from_another_ca(self):
        port = free_port()
        server = self.keep(s_server(port, "-cert", KEYS.path("stranger.pem"), "-key", KEYS.path("stranger.key")))
        client = self.keep(echo_client(port, *KEYS.cert_args("client"), "--tls-server-name", "pi-bench"))
        self.assertEqual(client.wait_exit(), 1)
        self.assert_log(client, r"refused: the server's certificate is not accepted: "
                                r"unable to get local issuer certificate \(subject CN=pi-bench\)")


class TestRefusals(Base):
    """Each refusal is named in the server's log while an authenticated client keeps working."""

    def start_psk(self):
        port = free_port()
        server = self.keep(echo_server(port, "--tls-psk-file", KEYS.server_psk,
                                       extra=["--handshake-timeout-ms", "700", "--max-handshakes", "4"]))
        good = self.keep(echo_client(port, "--tls-psk-file", KEYS.pi_psk))
        self.assert_log(server, r"client 1: authenticated as 'pi-bench'")
        return port, server, good

    def start_certificates(self):
        port = free_port()
        server = self.keep(echo_server(port, *KEYS.cert_args("server")))
        good = self.keep(echo_client(port, *KEYS.cert_args("client")))
        self.assert_log(server, r"client 1: authenticated as 'pi-bench'")
        return port, server, good

    def still_serving(self, server, good):
        self.assertIsNone(good.proc.poll(), "the good client was dropped:\n" + good.stderr_text())
        self.assert_both_ways(server, good, PAYLOAD, b"still here " + os.urandom(64))

    def test_wrong_key(self):
        port, server, good = self.start_psk()
        ours = self.keep(echo_client(port, "--tls-psk-file", KEYS.wrong_key_psk))
        self.assert_log(server, r"client 2: refused: wrong pre-shared key for identity 'pi-bench'")
        self.assertEqual(ours.wait_exit(), 1)
        self.assert_log(ours, r"refused: the server refused the handshake \(alert '(decrypt error|illegal parameter)'\): "
                              r"wrong pre-shared key for identity 'pi-bench'\?")
        self.keep(s_client(port, "-psk", os.urandom(32).hex(), "-psk_identity", "pi-bench"))
        self.assert_log(server, r"client 3: refused: wrong pre-shared key for identity 'pi-bench'")
        self.still_serving(server, good)

    def test_unknown_identity(self):
        port, server, good = self.start_psk()
        ours = self.keep(echo_client(port, "--tls-psk-file", KEYS.intruder_psk))
        self.assert_log(server, r"client 2: refused: unknown PSK identity 'intruder'")
        self.assertEqual(ours.wait_exit(), 1)
        self.keep(s_client(port, "-psk", KEYS.pi_key, "-psk_identity", "nobody"))
        self.assert_log(server, r"client 3: refused: unknown PSK identity 'nobody'")
        self.still_serving(server, good)

    def test_psk_client_against_a_certificate_server(self):
        port, server, good = self.start_certificates()
        ours = self.keep(echo_client(port, "--tls-psk-file", KEYS.pi_psk))
        self.assertEqual(ours.wait_exit(), 1)
        self.assert_log(ours, r"refused: the server presented a certificate instead of accepting our pre-shared key")
        self.assert_log(server, r"client 2: refused: the client refused the handshake")
        self.still_serving(server, good)

    def test_certificate_client_against_a_psk_server(self):
        port, server, good = self.start_psk()
        ours = self.keep(echo_client(port, *KEYS.cert_args("client")))
        self.assert_log(server, r"client 2: refused: the client offered no pre-shared key "
                                r"\(is it set up for certificates\?\)")
        self.assertEqual(ours.wait_exit(), 1)
        self.assert_log(ours, r"client 1: refused: the server refused the handshake")
        self.still_serving(server, good)

    def test_certificate_from_another_ca(self):
        port, server, good = self.start_certificates()
        self.keep(s_client(port, "-cert", KEYS.path("stranger.pem"), "-key", KEYS.path("stranger.key"),
                           "-CAfile", KEYS.path("ca.pem")))
        self.assert_log(server, r"client 2: refused: the client's certificate is not accepted: "
                                r"unable to get local issuer certificate \(subject CN=pi-bench\)")
        ours = self.keep(echo_client(port, "--tls-cert", KEYS.path("stranger.pem"), "--tls-key",
                                     KEYS.path("stranger.key"), "--tls-ca", KEYS.path("ca.pem")))
        self.assert_log(server, r"client 3: refused: the client's certificate is not accepted")
        self.assertEqual(ours.wait_exit(), 1)
        # TLS 1.3: the client's handshake ends before the server judges its certificate, so
        # the refusal arrives on the first read.
        self.assert_log(ours, r"refused: the server refused the connection \(alert 'unknown CA'\): "
                              r"the server does not accept our certificate")
        self.still_serving(server, good)

    def test_expired_certificate(self):
        port, server, good = self.start_certificates()
        self.keep(s_client(port, "-cert", KEYS.path("expired.pem"), "-key", KEYS.path("expired.key"),
                           "-CAfile", KEYS.path("ca.pem")))
        self.assert_log(server, r"client 2: refused: the client's certificate is not accepted: "
                                r"certificate has expired \(subject CN=pi-bench\)")
        self.still_serving(server, good)

    def test_no_client_certificate(self):
        port, server, good = self.start_certificates()
        self.keep(s_client(port, "-CAfile", KEYS.path("ca.pem")))
        self.assert_log(server, r"client 2: refused: the client sent no certificate; "
                                r"this server requires one signed by its CA")
        self.still_serving(server, good)

    def test_plaintext_client_on_a_tls_port(self):
        port, server, good = self.start_psk()
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
            raw.sendall(PROPOSAL_V2)
            self.assert_log(server, r"client 2: refused: a plaintext client on a TLS port: its first byte is "
                                    r"0x76 \('v', a tcpcan version proposal\), not a TLS handshake record")
            self.assertTrue(closed_by_peer(raw))  # closed, nothing sent in clear
        ours = self.keep(echo_client(port, "--plain"))
        ours.send(PROPOSAL_V2)
        self.assert_log(server, r"client 3: refused: a plaintext client on a TLS port")
        self.assertEqual(ours.wait_exit(), 0)  # to a plain client this is just a close
        self.still_serving(server, good)

    def test_tls_client_on_a_plaintext_port(self):
        port = free_port()
        server = self.keep(echo_server(port, "--plain"))
        good = self.keep(echo_client(port, "--plain"))
        self.assert_log(server, r"client 1: connected \(plain\)")
        ours = self.keep(echo_client(port, "--tls-psk-file", KEYS.pi_psk))
        self.assert_log(server, r"client 2: refused: a TLS ClientHello arrived on a plaintext port")
        self.assertEqual(ours.wait_exit(), 1)
        self.assert_log(ours, r"refused: the server closed the connection during the TLS handshake \(a plaintext server closes on a TLS ClientHello")
        self.keep(s_client(port, *psk_args()))
        self.assert_log(server, r"client 3: refused: a TLS ClientHello arrived on a plaintext port")
        self.still_serving(server, good)

    def test_handshake_that_never_finishes(self):
        port, server, good = self.start_psk()
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as silent, \
                socket.create_connection(("127.0.0.1", port), timeout=WAIT) as stalled:
            stalled.sendall(bytes.fromhex("16030102000100"))  # a ClientHello's first 7 bytes
            self.assert_log(server, r"client 2: refused: TLS handshake did not finish within 700 ms")
            self.assert_log(server, r"client 3: refused: TLS handshake did not finish within 700 ms")
            self.assertTrue(closed_by_peer(silent))
            self.assertTrue(closed_by_peer(stalled))
        self.still_serving(server, good)

    def test_handshake_flood_is_bounded(self):
        port, server, good = self.start_psk()  # at most 4 handshakes under way
        idle = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(6)]
        try:
            self.assert_log(server, r"client 6: refused: 4 TLS handshakes already under way")
            self.assert_log(server, r"client 7: refused: 4 TLS handshakes already under way")
            # Once the idle ones time out, a new client gets a slot again.
            self.assert_log(server, r"client 5: refused: TLS handshake did not finish")
            late = self.keep(echo_client(port, "--tls-psk-file", KEYS.pi_psk))
            self.assert_log(server, r"client 8: authenticated as 'pi-bench'")
            self.assert_both_ways(server, late)
        finally:
            for s in idle:
                s.close()
        self.assertIsNone(good.proc.poll())


class TestFiles(Base):
    def start_failing(self, *mode):
        server = self.keep(Process([TLS_ECHO, "server", "--port", str(free_port()), *mode]))
        self.assertEqual(server.wait_exit(), 1, server.stderr_text())
        return server

    def test_psk_file_readable_by_others_is_refused(self):
        path = KEYS.path("open.psk")
        with open(path, "w") as f:
            f.write("pi-bench:%s\n" % KEYS.pi_key)
        for mode, text in ((0o644, "0644"), (0o640, "0640")):
            os.chmod(path, mode)
            server = self.start_failing("--tls-psk-file", path)
            self.assert_log(server, re.escape(path) + r" holds secret keys but is readable or writable by group or "
                                    r"others \(mode " + text + r"\); refusing it: run chmod 600")

    def test_private_key_readable_by_others_is_refused(self):
        key = KEYS.path("open.key")
        shutil.copy(KEYS.path("server.key"), key)
        os.chmod(key, 0o644)
        server = self.start_failing("--tls-cert", KEYS.path("server.pem"), "--tls-key", key,
                                    "--tls-ca", KEYS.path("ca.pem"))
        self.assert_log(server, r"open.key holds secret keys but is readable")

    def test_bad_psk_line_is_named(self):
        path = KEYS.secret("short.psk", "# ok\npi-bench:%s\ndesktop:0011\n" % KEYS.pi_key)
        server = self.start_failing("--tls-psk-file", path)
        self.assert_log(server, re.escape(path) + r" line 3: key is 2 bytes; keys are 16 to 64 bytes")

    def test_key_that_does_not_match_the_certificate(self):
        server = self.start_failing("--tls-cert", KEYS.path("server.pem"), "--tls-key", KEYS.path("client.key"),
                                    "--tls-ca", KEYS.path("ca.pem"))
        self.assert_log(server, r"the private key .*client.key does not belong to the certificate .*server.pem")


def main():
    global TLS_ECHO, KEYS
    args = sys.argv[1:]
    if "--tls-echo" in args:
        i = args.index("--tls-echo")
        TLS_ECHO = args[i + 1]
        del args[i:i + 2]
    if not TLS_ECHO:
        print(__doc__)
        return 2
    if OPENSSL is None:
        print("SKIP: no openssl program")
        return 77
    KEYS = Keys()
    try:
        program = unittest.main(argv=[sys.argv[0], "-v", *args], exit=False)
    finally:
        KEYS.remove()
    result = program.result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())

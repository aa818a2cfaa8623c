#!/usr/bin/env python3
"""Command-line tests: value validation (issue 8), --version and --config FILE.

Every refused value must end the program with status 2 and a message that names the option
and the value, before anything starts. Configuration files go through the same checks, and
the command line wins over the file. Python standard library only.

Usage: test_cli.py [--tcpcan PATH] [unittest names, e.g. TestDurations]   (PATH also from $TCPCAN)
Prints unittest's summary, then a line "N passed, M failed"; exits non-zero on failure.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

TCPCAN = os.environ.get("TCPCAN", "")
RUN_TIMEOUT = 20.0  # s: a refused command line exits at once; this only bounds a hang
START_TIMEOUT = 10.0  # s: a server logs 'listening on' within this
STOP_TIMEOUT = 10.0  # s: a process exits after SIGTERM within this

DURATION_OPTIONS = ["--heartbeat", "--dead-after", "--stats", "--negotiation-timeout", "--max-age"]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_tcpcan(args):
    p = subprocess.run([TCPCAN] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=RUN_TIMEOUT)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


class CliTest(unittest.TestCase):

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="tcpcan-cli-")
        self.tmpdir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_refused(self, args, *needles):
        """Status 2, nothing on stdout, one message naming what was wrong; returns stderr."""
        rc, out, err = run_tcpcan(args)
        shown = "tcpcan " + " ".join(args)
        self.assertEqual(rc, 2, "%s: status %s, stderr %r" % (shown, rc, err))
        self.assertEqual(out, "", "%s wrote to stdout" % shown)
        self.assertTrue(err.startswith("tcpcan: "), "%s: %r" % (shown, err))
        for needle in needles:
            self.assertIn(needle, err, shown)
        # A readable message: no 309-digit bound, no C++ type names, short.
        self.assertNotRegex(re.sub(r"'[^']*'", "''", err), r"\d{12,}", shown)  # the value itself may be long
        self.assertLess(len(err), 400, shown)
        return err

    def start_server(self, args):
        """Starts tcpcan, waits for 'listening on'; returns (process, stderr text so far)."""
        p = subprocess.Popen([TCPCAN] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.addCleanup(self.stop, p)
        text = b""
        deadline = time.monotonic() + START_TIMEOUT
        os.set_blocking(p.stderr.fileno(), False)
        while b"listening on" not in text and time.monotonic() < deadline and p.poll() is None:
            chunk = p.stderr.read()
            if chunk:
                text += chunk
            else:
                time.sleep(0.05)
        if p.poll() is not None:
            text += p.stderr.read() or b""
        return p, text.decode(errors="replace")

    @staticmethod
    def stop(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=STOP_TIMEOUT)
        for stream in (p.stdin, p.stdout, p.stderr):
            if stream:
                stream.close()


class TestDurations(CliTest):
    """Finite, decimal, 1 ms .. 1 day (0 where it means off), no finer than 1 µs."""

    def test_nan_and_infinities(self):
        for option in DURATION_OPTIONS:
            for value in ["nan", "NaN", "inf", "-inf", "infinity"]:
                with self.subTest(option=option, value=value):
                    self.assert_refused(["server", "--can", "-", option, value], option, "'%s'" % value,
                                        "not a decimal number")

    def test_absurd_values(self):
        for option in ["--heartbeat", "--dead-after", "--stats", "--negotiation-timeout"]:
            for value in ["1e30", "86401", "1e400", "-1", "0.0005"]:
                with self.subTest(option=option, value=value):
                    err = self.assert_refused(["server", "--can", "-", option, value], option, "'%s'" % value,
                                              "out of range")
                    self.assertIn("0.001 to 86400 seconds", err)

    def test_negotiation_timeout_cannot_be_disabled_by_a_tiny_value(self):
        err = self.assert_refused(["server", "--can", "-", "--negotiation-timeout", "1e-9"],
                                  "--negotiation-timeout", "'1e-9'", "out of range")
        self.assertNotIn("0 (off)", err, "zero is not allowed for this option")
        self.assert_refused(["server", "--can", "-", "--negotiation-timeout", "0"], "'0'", "out of range")

    def test_denormal(self):
        self.assert_refused(["server", "--can", "-", "--heartbeat", "4.9e-324"], "--heartbeat", "out of range")
        self.assert_refused(["server", "--can", "-", "--heartbeat", "1e-310"], "--heartbeat", "out of range")

    def test_finer_than_a_microsecond(self):
        self.assert_refused(["server", "--can", "-", "--heartbeat", "1.0000005"], "--heartbeat", "'1.0000005'",
                            "1 microsecond")
        self.assert_refused(["server", "--can", "-", "--max-age", "1.0005"], "--max-age", "1 microsecond")

    def test_hex_and_words(self):
        for value in ["0x10", "0x1p3", "ten", "1s", "", " 1"]:
            with self.subTest(value=value):
                self.assert_refused(["server", "--can", "-", "--heartbeat", value], "--heartbeat",
                                    "not a decimal number")

    def test_max_age_is_in_milliseconds(self):
        err = self.assert_refused(["server", "--can", "-", "--max-age", "0.5"], "--max-age", "'0.5'")
        self.assertIn("1 to 86400000 milliseconds", err)
        self.assert_refused(["server", "--can", "-", "--max-age", "86400001"], "--max-age", "out of range")

    def test_latency_budget_goes_down_to_10_microseconds(self):
        err = self.assert_refused(["server", "--can", "-", "--latency-budget", "0.005"], "--latency-budget",
                                  "'0.005'", "out of range")
        self.assertIn("0 (off) or 0.01 to 86400000 milliseconds (10 µs to 1 day)", err)
        self.assert_refused(["server", "--can", "-", "--latency-budget", "0.0105"], "--latency-budget",
                            "1 microsecond")
        port = free_port()
        p, err = self.start_server(["server", "--can", "-", "--bind", "127.0.0.1", "--port", str(port),
                                    "--latency-budget", "0.25"])
        self.assertIn("listening on 127.0.0.1:%d" % port, err)
        self.assertIsNone(p.poll())

    def test_good_values_start(self):
        port = free_port()
        p, err = self.start_server(["server", "--can", "-", "--bind", "127.0.0.1", "--port", str(port),
                                    "--heartbeat", "0.001", "--dead-after", "86400", "--stats", "0",
                                    "--max-age", "1.5", "--negotiation-timeout", "2.000001"])
        self.assertIn("listening on 127.0.0.1:%d" % port, err)
        self.assertIsNone(p.poll())


class TestIntegers(CliTest):
    """Ports and other counts: decimal digits only, within range."""

    def test_port_not_decimal(self):
        for form in (["server", "--can", "-"], ["-", "--no-retry"]):
            for value in ["0x10", "+16", "-1", "16.0", "1e3", "sixteen"]:
                with self.subTest(form=form[0], value=value):
                    self.assert_refused(form + ["--port", value], "--port", "'%s'" % value, "not a decimal number")

    def test_port_range(self):
        for value in ["0", "65536", "99999999999999999999999"]:
            with self.subTest(value=value):
                self.assert_refused(["server", "--can", "-", "--port", value], "--port", "out of range",
                                    "1 to 65535")

    def test_leading_zero_is_decimal_not_octal(self):
        # "010" is 10, as a person reads it (strtol with base 0 would say 8).
        port = free_port()
        text = "%05d" % port if port < 10000 else "0%d" % port
        p, err = self.start_server(["server", "--can", "-", "--bind", "127.0.0.1", "--port", text])
        self.assertIn("listening on 127.0.0.1:%d" % port, err)

    def test_other_integers(self):
        self.assert_refused(["server", "--can", "-", "--max-clients", "0x10"], "--max-clients", "not a decimal")
        self.assert_refused(["server", "--can", "-", "--max-clients", "1025"], "--max-clients", "1 to 1024")
        self.assert_refused(["server", "--can", "-", "--protocol-version", "0x2"], "--protocol-version")
        self.assert_refused(["server", "--can", "can0", "--can-bitrate", "5e5"], "--can-bitrate", "not a decimal")
        self.assert_refused(["server", "--can", "can0", "--can-bitrate", "0"], "--can-bitrate", "out of range")


class TestVersion(CliTest):

    def test_version(self):
        for args in (["--version"], ["server", "--version"], ["client", "--version"]):
            with self.subTest(args=args):
                rc, out, err = run_tcpcan(args)
                self.assertEqual(rc, 0, err)
                self.assertRegex(out, r"^tcpcan \d+\.\d+\.\d+\n")
                self.assertIn("versions 1 (the original Python tcpcan", out)
                self.assertIn("and 2", out)
                self.assertIn("canip_peer", out)
                self.assertEqual(err, "")

    def test_help_mentions_config_and_version(self):
        rc, out, _ = run_tcpcan(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn("--config FILE", out)
        self.assertIn("--version", out)
        rc, out, _ = run_tcpcan(["server", "--help"])
        self.assertEqual(rc, 0)
        self.assertIn("--config FILE", out)


class TestConfigFile(CliTest):

    def test_server_from_file(self):
        port = free_port()
        path = self.write("server.toml", '# a server for the tests\ncan = "-"\nbind = "127.0.0.1"\n'
                          'port = %d\nmax-clients = 3\nread-only = true\nfilter = ["100-1FF", "7FF"]\n' % port)
        p, err = self.start_server(["server", "--config", path])
        self.assertIn("listening on 127.0.0.1:%d" % port, err)
        self.assertIn("at most 3 clients, read-only", err)

    def test_section_form(self):
        port = free_port()
        path = self.write("server.ini", '[server]\ncan=-\nbind=127.0.0.1\nport=%d\n' % port)
        p, err = self.start_server(["server", "--config", path])
        self.assertIn("listening on 127.0.0.1:%d" % port, err)

    def test_plain_tcpcan_form_with_positional(self):
        port = free_port()
        path = self.write("legacy.toml", 'canif = "-"\nserve = true\nhost = "127.0.0.1"\nport = %d\n' % port)
        p, err = self.start_server(["--config", path])
        self.assertIn("listening on 127.0.0.1:%d" % port, err)

    def test_command_line_wins(self):
        file_port, cli_port = free_port(), free_port()
        path = self.write("server.toml", 'can = "-"\nbind = "127.0.0.1"\nport = %d\nmax-clients = 3\n' % file_port)
        p, err = self.start_server(["server", "--config", path, "--port", str(cli_port), "--max-clients", "5"])
        self.assertIn("listening on 127.0.0.1:%d" % cli_port, err)
        self.assertIn("at most 5 clients", err)

    def test_same_validation_as_command_line(self):
        cases = [
            ('heartbeat = "nan"\n', "--heartbeat", "'nan'", "not a decimal number"),
            ("heartbeat = 1e30\n", "--heartbeat", "out of range"),
            ('port = "0x10"\n', "--port", "'0x10'", "not a decimal number"),
            ("port = 0\n", "--port", "'0'", "out of range"),
            ("negotiation-timeout = 1e-9\n", "--negotiation-timeout", "out of range"),
            ('filter = "12G"\n', "--filter '12G'", "hexadecimal digit"),
            ('log-level = "LOUD"\n', "--log-level", "LOUD"),
        ]
        for text, *needles in cases:
            with self.subTest(text=text):
                path = self.write("bad.toml", 'can = "-"\n' + text)
                self.assert_refused(["server", "--config", path], *needles)

    def test_unknown_key(self):
        path = self.write("bad.toml", 'can = "-"\nhartbeat = 2\n')
        self.assert_refused(["server", "--config", path], "--config " + path, "unknown option 'hartbeat'")
        # An option of the other form is unknown too.
        path = self.write("bad2.toml", 'can = "-"\nhost = "127.0.0.1"\n')
        self.assert_refused(["server", "--config", path], "unknown option 'host'")

    def test_missing_file(self):
        path = os.path.join(self.tmpdir, "absent.toml")
        self.assert_refused(["server", "--can", "-", "--config", path], "--config " + path, "cannot read")

    def test_required_option_missing_in_file_and_command_line(self):
        path = self.write("empty.toml", "# nothing\n")
        self.assert_refused(["client", "--config", path], "--can")

    def test_example_file_is_valid(self):
        # The example shipped in the repository (installed as /etc/tcpcan/can0.conf) serves
        # can0; here the command line moves it to stdio and 127.0.0.1.
        example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packaging", "tcpcan.conf")
        port = free_port()
        p, err = self.start_server(["--config", example, "--host", "127.0.0.1", "--port", str(port), "-"])
        self.assertIn("listening on 127.0.0.1:%d" % port, err)


def main(argv):
    global TCPCAN
    args = list(argv[1:])
    if len(args) >= 2 and args[0] == "--tcpcan":
        TCPCAN = args[1]
        args = args[2:]
    if not TCPCAN or not os.access(TCPCAN, os.X_OK):
        print("tcpcan executable not found: pass --tcpcan PATH or set TCPCAN (got %r)" % TCPCAN)
        print("0 passed, 1 failed")
        return 1
    TCPCAN = os.path.abspath(TCPCAN)
    loader = unittest.TestLoader()
    module = sys.modules[__name__]
    suite = loader.loadTestsFromNames(args, module) if args else loader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped) - len(result.expectedFailures)
    print("%d passed, %d failed" % (passed, failed))
    sys.stdout.flush()
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

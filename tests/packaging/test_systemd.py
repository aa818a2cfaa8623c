#!/usr/bin/env python3
"""The systemd unit (packaging/tcpcan@.service) and tcpcan's Type=notify readiness.

- `systemd-analyze verify` accepts the generated unit without a single warning (it exits 0
  on unknown keys, so any output fails the test);
- `systemd-analyze security --offline` rates its exposure at most 3.0 ("OK");
- it is a template whose ExecStart reads /etc/tcpcan/%i.conf, restarts on failure but not
  on status 2, and keeps only CAP_NET_ADMIN;
- tcpcan built with libsystemd sends READY=1 to $NOTIFY_SOCKET once it listens (a fake
  service manager socket here), and without it sends nothing.

Usage: test_systemd.py --unit BUILD/packaging/tcpcan@.service --tcpcan BUILD/tools/tcpcan
         --notify yes|no [--systemd-analyze PATH]
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

ARGS = None
RUN_TIMEOUT = 60  # s: bounds a hung tool, never a measurement
READY_TIMEOUT = 10  # s: tcpcan is listening well within this


def unit_text():
    with open(ARGS.unit) as f:
        return f.read()


def settings(text):
    found = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            found.setdefault(m.group(1), []).append(m.group(2))
    return found


class TestUnit(unittest.TestCase):

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="tcpcan-unit-")
        # ExecStart must name an executable that exists: point it at the built tcpcan.
        text = re.sub(r"^ExecStart=\S+", "ExecStart=" + os.path.abspath(ARGS.tcpcan), unit_text(), flags=re.M)
        self.unit = os.path.join(self._tmp.name, "tcpcan@.service")
        with open(self.unit, "w") as f:
            f.write(text)

    def tearDown(self):
        self._tmp.cleanup()

    def analyze(self, *args):
        return subprocess.run([ARGS.systemd_analyze] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT)

    def test_verify_is_silent(self):
        for name in ("tcpcan@.service", "tcpcan@can0.service"):
            path = os.path.join(self._tmp.name, name)
            if path != self.unit:
                shutil.copy(self.unit, path)
            with self.subTest(unit=name):
                r = self.analyze("verify", "--man=no", path)
                self.assertEqual(r.returncode, 0, r.stdout.decode())
                self.assertEqual(r.stdout.decode().strip(), "")

    def test_verify_catches_a_typo(self):
        # The test above would notice a broken unit: a misspelt key is reported.
        with open(self.unit, "a") as f:
            f.write("[Service]\nProtectClok=yes\n")
        r = self.analyze("verify", "--man=no", self.unit)
        self.assertIn("ProtectClok", r.stdout.decode())

    def test_exposure(self):
        r = self.analyze("security", "--offline=true", "--threshold=30", self.unit)
        self.assertEqual(r.returncode, 0, r.stdout.decode()[-2000:])

    def test_settings(self):
        s = settings(unit_text())
        self.assertEqual(s["Type"], ["notify" if ARGS.notify == "yes" else "simple"])
        self.assertEqual(len(s["ExecStart"]), 1)
        self.assertRegex(s["ExecStart"][0], r"^/\S*/tcpcan --config /\S*/tcpcan/%i\.conf$")
        self.assertEqual(s["Restart"], ["on-failure"])
        self.assertEqual(s["StartLimitIntervalSec"], ["0"], "a daemon keeps retrying a missing bus")
        self.assertEqual(s["RestartPreventExitStatus"], ["2"])
        self.assertEqual(s["DynamicUser"], ["yes"])
        self.assertEqual(s["CapabilityBoundingSet"], ["CAP_NET_ADMIN"])
        self.assertEqual(s["AmbientCapabilities"], ["CAP_NET_ADMIN"])
        self.assertEqual(sorted(s["RestrictAddressFamilies"][0].split()),
                         sorted(["AF_CAN", "AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"]))
        self.assertEqual(s["WantedBy"], ["multi-user.target"])


class TestReadiness(unittest.TestCase):

    def test_ready_once_listening(self):
        with tempfile.TemporaryDirectory(prefix="tcpcan-notify-") as tmp:
            path = os.path.join(tmp, "notify")
            manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            manager.bind(path)
            manager.settimeout(READY_TIMEOUT)
            env = dict(os.environ, NOTIFY_SOCKET=path)
            p = subprocess.Popen([ARGS.tcpcan, "server", "--can", "-", "--bind", "127.0.0.1", "--port",
                                  str(free_port())], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                if ARGS.notify == "yes":
                    message = manager.recv(4096).decode()
                    self.assertIn("READY=1", message.split("\n"))
                    self.assertIn("STATUS=listening", message.split("\n"))
                else:
                    manager.settimeout(2)
                    with self.assertRaises(socket.timeout):
                        manager.recv(4096)
            finally:
                p.send_signal(signal.SIGTERM)
                _, err = p.communicate(timeout=READY_TIMEOUT)
                manager.close()
            self.assertEqual(p.returncode, 0, err.decode())
            self.assertIn("listening on 127.0.0.1", err.decode())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv):
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--unit", required=True)
    parser.add_argument("--tcpcan", required=True)
    parser.add_argument("--notify", choices=["yes", "no"], required=True)
    parser.add_argument("--systemd-analyze", dest="systemd_analyze", default="systemd-analyze")
    ARGS, rest = parser.parse_known_args(argv[1:])
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

#!/usr/bin/env python3
"""The man page lists every option that `tcpcan --help` (and `server --help`, `client --help`)
shows, as a bold option, and has the sections a reader looks for.

Usage: test_man.py --tcpcan BUILD/tools/tcpcan --man BUILD/packaging/tcpcan.1
"""
import argparse
import re
import subprocess
import sys
import unittest

ARGS = None
RUN_TIMEOUT = 30  # s: bounds a hang


def help_options(args):
    out = subprocess.run([ARGS.tcpcan] + args + ["--help"], stdout=subprocess.PIPE, check=True,
                         timeout=RUN_TIMEOUT).stdout.decode()
    options = set()
    for line in out.splitlines():
        # Option lines start with two spaces and the option names: "  -v,--verbose  ..."
        m = re.match(r"^  (-[^\s]+)", line)
        if m:
            options.update(name for name in m.group(1).split(",") if name.startswith("-"))
        # Options named in the footer ("Also: --config FILE ..., --version").
        if line.startswith("Also:"):
            options.update(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line))
    return options


class TestManPage(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        with open(ARGS.man, encoding="utf-8") as f:
            cls.roff = f.read()

    def test_every_option_of_every_form(self):
        forms = {"plain": [], "server": ["server"], "client": ["client"]}
        seen = set()
        for form, args in forms.items():
            options = help_options(args)
            self.assertGreater(len(options), 20, "too few options parsed from %s --help" % form)
            for option in sorted(options):
                with self.subTest(form=form, option=option):
                    self.assertIn("\\fB%s\\fR" % option, self.roff, "%s (from %s --help) is not in the man page" %
                                  (option, form))
            seen |= options
        for option in ("--config", "--version", "--heartbeat", "--can", "--bind", "--serve"):
            self.assertIn(option, seen, "the --help parsing lost " + option)

    def test_sections(self):
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "DIALECTS", "OPTIONS", "CONFIGURATION FILE",
                        "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"):
            with self.subTest(section=section):
                self.assertRegex(self.roff, r'(?m)^\.SH "?%s"?$' % section)

    def test_exit_statuses(self):
        exit_section = self.roff.split(".SH EXIT STATUS", 1)[1].split(".SH", 1)[0]
        for status in ("0", "1", "2"):
            self.assertIn("\\fB%s\\fR" % status, exit_section)

    def test_dialects(self):
        dialects = self.roff.split(".SH DIALECTS", 1)[1].split(".SH", 1)[0]
        for word in ("Protocol version 1", "Protocol version 2", "canip_peer", "tcpcan"):
            self.assertIn(word, dialects)


def main(argv):
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--tcpcan", required=True)
    parser.add_argument("--man", required=True)
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

#!/usr/bin/env python3
"""The closing report of scripts/test.sh: counts every test that ran and fails when a suite
the run promised ran no test, or when a test was skipped (in test mode every test
dependency is required, so a skip means something is missing).

  test_report.py --meson LOG SUITE,SUITE,... [--meson ...] [--step NAME PASSED FAILED ...]

LOG is a meson testlog.json. A meson test counts as the test cases it reports: doctest's
"test cases: N | P passed | F failed", or a last "P passed, F failed" line (the Python
suites, the SocketCAN scenarios); any other meson test counts as one. A step is a part of
the run outside meson (the Debian package checks, the libFuzzer targets) with its own
counts. Prints per-suite counts, then one line "tests: N passed, M failed"; exits 1 when
anything failed, was skipped or did not run.
"""
import argparse
import json
import os
import re
import sys

FAILED = ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS")
DOCTEST = re.compile(r"\[doctest\] test cases:\s*\d+\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed")
PLAIN = re.compile(r"(?m)^(\d+) passed, (\d+) failed$")


def suites_of(result):
    """A test's suites: meson names a test "PROJECT:SUITE+SUITE / NAME" in its log."""
    if "suite" in result:
        return [s.split(":", 1)[-1] for s in result["suite"]]
    qualified = result["name"].split(" / ", 1)[0]
    return qualified.split(":", 1)[-1].split("+") if ":" in qualified else []


def cases_of(result):
    """(passed, failed) test cases inside one meson test."""
    out = result.get("stdout") or ""
    found = DOCTEST.findall(out) or PLAIN.findall(out)
    ok = result["result"] in ("OK", "EXPECTEDFAIL")
    if found:
        passed, failed = (int(x) for x in found[-1])
    else:
        passed, failed = (1, 0) if ok else (0, 0)
    if result["result"] in FAILED and failed == 0:
        failed = 1  # it failed without saying how many (a crash, a timeout)
    return passed, failed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--meson", nargs=2, action="append", default=[], metavar=("LOG", "SUITES"))
    parser.add_argument("--step", nargs=3, action="append", default=[], metavar=("NAME", "PASSED", "FAILED"))
    args = parser.parse_args()

    passed = failed = 0
    problems = []
    for log, wanted in args.meson:
        folder = os.path.dirname(os.path.dirname(log)) or "."
        counts = {suite: [0, 0, 0] for suite in wanted.split(",")}  # meson tests, passed, failed
        results = []
        if not os.path.exists(log):
            problems.append("%s: no test log (its tests did not run)" % folder)
        else:
            results = [json.loads(line) for line in open(log) if line.strip()]
        for r in results:
            if r["result"] == "SKIP":
                problems.append("%s: %s was skipped" % (folder, r["name"]))
                continue
            ok, bad = cases_of(r)
            passed += ok
            failed += bad
            for s in suites_of(r):
                if s in counts:
                    counts[s][0] += 1
                    counts[s][1] += ok
                    counts[s][2] += bad
        for suite, (tests, ok, bad) in counts.items():
            print("  %-28s %5d passed, %d failed (%d meson tests)" % ("%s: %s" % (folder, suite), ok, bad, tests))
            if tests == 0 or ok + bad == 0:
                problems.append("%s: suite '%s' ran no test" % (folder, suite))
    for name, ok, bad in args.step:
        ok, bad = int(ok), int(bad)
        print("  %-28s %5d passed, %d failed" % (name, ok, bad))
        passed += ok
        failed += bad
        if ok + bad == 0:
            problems.append("%s ran no test" % name)
    for p in problems:
        print("test.sh: " + p)
    print("tests: %d passed, %d failed" % (passed, failed + len(problems)))
    return 0 if failed == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())

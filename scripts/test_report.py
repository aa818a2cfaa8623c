#!/usr/bin/env python3
"""The closing report of scripts/test.sh: counts every test that ran and fails when a suite
the run promised ran no test, or when a test was skipped (in test mode every test
dependency is required, so a skip means something is missing).

  test_report.py --meson LOG SUITE,SUITE,... [--meson ...] [--step NAME PASSED FAILED ...]

LOG is a meson testlog.json. A step is a part of the run outside meson (the Debian package
checks, the libFuzzer targets) with its own counts. Prints per-suite counts, then one line
"tests: N passed, M failed"; exits 1 when anything failed, was skipped or did not run.
"""
import argparse
import json
import os
import sys

FAILED = ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--meson", nargs=2, action="append", default=[], metavar=("LOG", "SUITES"))
    parser.add_argument("--step", nargs=3, action="append", default=[], metavar=("NAME", "PASSED", "FAILED"))
    args = parser.parse_args()

    passed = failed = 0
    problems = []
    for log, suites in args.meson:
        folder = os.path.dirname(os.path.dirname(log)) or "."
        counts = {suite: [0, 0] for suite in suites.split(",")}
        if not os.path.exists(log):
            problems.append("%s: no test log (its tests did not run)" % folder)
            results = []
        else:
            results = [json.loads(line) for line in open(log) if line.strip()]
        for r in results:
            suites_of_test = [s.split(":", 1)[-1] for s in r.get("suite", [])]
            ok = r["result"] in ("OK", "EXPECTEDFAIL")
            bad = r["result"] in FAILED
            passed += ok
            failed += bad
            if r["result"] == "SKIP":
                problems.append("%s: %s was skipped" % (folder, r["name"]))
            for s in suites_of_test:
                if s in counts:
                    counts[s][0 if ok else 1] += ok or bad
        for suite, (ok, bad) in counts.items():
            print("  %-28s %4d passed, %d failed" % ("%s: %s" % (folder, suite), ok, bad))
            if ok + bad == 0:
                problems.append("%s: suite '%s' ran no test" % (folder, suite))
    for name, ok, bad in args.step:
        ok, bad = int(ok), int(bad)
        print("  %-28s %4d passed, %d failed" % (name, ok, bad))
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

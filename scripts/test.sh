#!/usr/bin/env bash
# Builds and runs every test suite; what the README's Test section and CI run.
#   1. installs what the machine lacks (scripts/install-deps.sh)
#   2. build/: unit, integration, fuzz (corpus replay), socketcan (vcan, natively or in a VM)
#   3. build-sanitize/ (clang): unit and integration again under AddressSanitizer + UBSan
#   4. libFuzzer: every target for TCPCAN_FUZZ_SECONDS (default 60) each
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

step() { printf '\n==== %s\n' "$*"; }

step "build and test (unit, integration, fuzz replay, socketcan)"
[ -f build/build.ninja ] || meson setup build
meson compile -C build
meson test -C build --print-errorlogs --num-processes 2

step "clang, AddressSanitizer + UndefinedBehaviorSanitizer: unit and integration"
# Built with clang, so the whole tree is also checked warning-free (-Werror) with clang.
[ -f build-sanitize/build.ninja ] || CXX=clang++ meson setup build-sanitize -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debug -Dsocketcan_tests=disabled -Dcross_tests=disabled
meson compile -C build-sanitize
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-sanitize --print-errorlogs --num-processes 2 --suite unit --suite integration

if [ -x fuzz/run.sh ] || [ -f fuzz/run.sh ]; then
    step "libFuzzer: ${TCPCAN_FUZZ_SECONDS:-60} s per target"
    bash fuzz/run.sh "${TCPCAN_FUZZ_SECONDS:-60}"
fi
step "all test suites passed"
# One closing line in the plain 'N passed, N failed' form, counted from meson's own logs.
python3 - build/meson-logs/testlog.json build-sanitize/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = 0
for path in sys.argv[1:]:
    for line in open(path):
        result = json.loads(line)["result"]
        passed += result == "OK"
        failed += result in ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS")
print(f"tests: {passed} passed, {failed} failed")
PY

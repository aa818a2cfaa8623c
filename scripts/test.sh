#!/usr/bin/env bash
# Builds and runs every test suite; what the README's Test section and CI run.
#   1. installs what the machine lacks (scripts/install-deps.sh)
#   2. build/: unit, integration, fuzz (corpus replay), socketcan (vcan, natively or in a VM),
#      packaging (man page, systemd unit, Wireshark dissector)
#   3. build-sanitize/ (clang): unit and integration again under AddressSanitizer + UBSan
#   4. the Debian package, built with Debian's hardening flags and checked (check-deb.sh)
#   5. libFuzzer: every target for TCPCAN_FUZZ_SECONDS (default 25) each: 14 targets, ~6 min
# Every build folder is configured in test mode: each suite's dependencies are required
# (a missing one stops the run at setup), and a folder set up earlier (by hand, or before a
# dependency was installed) is reconfigured with these options. The run fails when a suite
# it promises ran no test; its closing line counts every test that ran.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

step() { printf '\n==== %s\n' "$*"; }
status=0

# setup_build DIR OPTION...: set DIR up with these options, or reconfigure it with them.
setup_build() {
    local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@"
    else
        meson setup "$dir" "$@"
    fi
}
test_mode=(-Dtests=enabled -Dtools=enabled -Dsocketcan_tests=enabled -Dcross_tests=enabled
           -Dsystemd=enabled -Dman=enabled)

step "build and test (unit, integration, fuzz replay, socketcan, packaging)"
setup_build build "${test_mode[@]}"
meson compile -C build
meson test -C build --print-errorlogs --num-processes 2 || status=1

step "clang, AddressSanitizer + UndefinedBehaviorSanitizer: unit and integration"
# Built with clang, so the whole tree is also checked warning-free (-Werror) with clang.
CXX=clang++ setup_build build-sanitize "${test_mode[@]}" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debug -Dsocketcan_tests=disabled -Dcross_tests=disabled
meson compile -C build-sanitize
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-sanitize --print-errorlogs --num-processes 2 --suite unit --suite integration || status=1

step "Debian package: dpkg-buildpackage (Debian's hardening flags, -Werror), lintian, contents"
deb_log=$(mktemp)
bash scripts/check-deb.sh | tee "$deb_log" || status=1
deb_counts=$(sed -n 's/^check-deb: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$deb_log" | tail -1)
rm -f "$deb_log"

fuzz_counts="0 0"
if [ -f fuzz/run.sh ]; then
    step "libFuzzer: ${TCPCAN_FUZZ_SECONDS:-25} s per target"
    fuzz_log=$(mktemp)
    bash fuzz/run.sh "${TCPCAN_FUZZ_SECONDS:-25}" | tee "$fuzz_log" || status=1
    # One row per target in run.sh's closing table, ending in ok or FAILED.
    fuzz_counts="$(grep -cE '^fuzz_[a-z_]+ .* ok$' "$fuzz_log" || true) $(grep -cE '^fuzz_[a-z_]+ .* FAILED$' "$fuzz_log" || true)"
    rm -f "$fuzz_log"
fi

step "summary"
# shellcheck disable=SC2086  # the counts are two words on purpose
python3 scripts/test_report.py \
    --meson build/meson-logs/testlog.json unit,integration,fuzz,socketcan,packaging \
    --meson build-sanitize/meson-logs/testlog.json unit,integration \
    --step "Debian package checks" ${deb_counts:-0 1} \
    --step "libFuzzer targets" $fuzz_counts || status=1
exit $status

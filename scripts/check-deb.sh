#!/usr/bin/env bash
# Builds the Debian package as a fresh Debian machine would (dpkg-buildpackage -us -uc -b:
# Debian's hardening flags with the project's -Werror), from a copy of this tree, and checks
# it without installing it: lintian reports no error; it holds the program, the man page,
# the unit, the configuration file (a conffile), the dissector and the core's headers with
# tcpcan-core.pc; the unpacked program runs; the unpacked headers compile through pkg-config.
# Prints one line per check and a closing "check-deb: N passed, M failed".
# Environment: TCPCAN_DEB_KEEP=DIR keeps the .deb files in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0; failed=0
check() {  # description, command...
    local what=$1; shift
    if "$@" >"$work/check.log" 2>&1; then
        passed=$((passed + 1)); echo "ok   $what"
    else
        failed=$((failed + 1)); echo "FAIL $what"; sed 's/^/     /' "$work/check.log" | tail -30
    fi
}

# The tree as git sees it (tracked and new files, not build folders), else everything.
mkdir "$work/src"
if git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        [ -e "$f" ] && printf '%s\0' "$f"
    done | tar --null -T - -cf - | tar -xf - -C "$work/src"
else
    tar --exclude='./build*' -cf - . | tar -xf - -C "$work/src"
fi

echo "check-deb: dpkg-buildpackage -us -uc -b (log: build.log)"
if ! (cd "$work/src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
    tail -60 "$work/build.log"
    echo "check-deb: 0 passed, 1 failed"
    exit 1
fi
passed=$((passed + 1)); echo "ok   dpkg-buildpackage built the package with Debian's flags and -Werror"

deb=$(ls "$work"/tcpcan_*.deb | grep -v dbgsym | head -1)
[ -n "${TCPCAN_DEB_KEEP:-}" ] && mkdir -p "$TCPCAN_DEB_KEEP" && cp "$work"/*.deb "$TCPCAN_DEB_KEEP"/

grep -q -- "-fstack-protector-strong" "$work/build.log" && grep -q -- "-D_FORTIFY_SOURCE=2" "$work/build.log" \
    && grep -q -- "-Wl,-z,now" "$work/build.log" \
    || { failed=$((failed + 1)); echo "FAIL the build log does not show dpkg-buildflags' hardening flags"; }

check "lintian: no errors" lintian --fail-on error --tag-display-limit 0 "$deb"
lintian --tag-display-limit 0 "$deb" 2>&1 | sed 's/^/     lintian: /' || true

dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#' >"$work/contents"
for path in /usr/bin/tcpcan /usr/share/man/man1/tcpcan.1.gz /lib/systemd/system/tcpcan@.service \
            /etc/tcpcan/can0.conf /usr/include/tcpcan/session.hpp /usr/include/tcpcan/filter.hpp \
            "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/pkgconfig/tcpcan-core.pc" \
            "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/wireshark/plugins/tcpcan.lua"; do
    check "the package holds $path" grep -qx -- "$path" "$work/contents"
done
dpkg-deb -e "$deb" "$work/control"
check "/etc/tcpcan/can0.conf is a conffile" grep -qx /etc/tcpcan/can0.conf "$work/control/conffiles"

root="$work/root"
dpkg-deb -x "$deb" "$root"
version=$(cd "$work/src" && dpkg-parsechangelog -S Version)
check "the unpacked tcpcan --version says $version" \
    bash -c "'$root/usr/bin/tcpcan' --version | head -1 | grep -qx 'tcpcan $version'"
check "the unpacked tcpcan is PIE with immediate binding" \
    bash -c "readelf -h '$root/usr/bin/tcpcan' | grep -q 'DYN' && readelf -d '$root/usr/bin/tcpcan' | grep -q BIND_NOW"
check "the unpacked man page renders" bash -c "zcat '$root/usr/share/man/man1/tcpcan.1.gz' | grep -q '^.SH EXIT STATUS'"
check "the unpacked unit runs /usr/bin/tcpcan with /etc/tcpcan/%i.conf" \
    grep -qx 'ExecStart=/usr/bin/tcpcan --config /etc/tcpcan/%i.conf' "$root/lib/systemd/system/tcpcan@.service"
cat >"$work/use_core.cpp" <<'CPP'
#include <tcpcan/session.hpp>
int main() { return tcpcan::highest_version == 2 ? 0 : 1; }
CPP
check "the unpacked headers compile through tcpcan-core.pc" bash -c "
    export PKG_CONFIG_SYSROOT_DIR='$root' PKG_CONFIG_LIBDIR='$root/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/pkgconfig'
    g++ \$(pkg-config --cflags tcpcan-core) '$work/use_core.cpp' -o '$work/use_core' && '$work/use_core'"

echo "check-deb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env python3
"""Fails if include/ holds a header that tests/core/meson.build does not compile alone.

    check_header_list.py INCLUDE_DIR LISTED_HEADER...

Each LISTED_HEADER is a path relative to INCLUDE_DIR (as in `#include <...>`). A header
on disk but not in the list, or in the list but not on disk, is reported.
"""

import os
import sys


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    root, listed = argv[1], set(argv[2:])
    on_disk = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith((".hpp", ".h", ".hh")):
                on_disk.add(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    missing = sorted(on_disk - listed)
    stale = sorted(listed - on_disk)
    for h in missing:
        print(f"FAIL: {h} is not in core_headers in tests/core/meson.build, so nothing checks it compiles alone")
    for h in stale:
        print(f"FAIL: {h} is in core_headers in tests/core/meson.build but not under {root}")
    print(f"{len(on_disk)} headers on disk, {len(listed)} listed: {'FAIL' if missing or stale else 'PASS'}")
    return 1 if missing or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

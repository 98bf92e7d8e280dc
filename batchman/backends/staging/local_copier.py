"""Copies files for LocalStaging.request: triples of (source, destination, pending mark)."""

from __future__ import annotations

import os
import sys
import time

from batchman.util.files import atomic_copy


def main(argv: list[str]) -> int:
    delay = 0.0
    if argv[:1] == ["--delay"]:
        delay = float(argv[1])
        argv = argv[2:]
    for i in range(0, len(argv) - 2, 3):
        src, dst, mark = argv[i:i + 3]
        if not os.path.exists(mark):
            continue            # cancelled or released meanwhile
        if delay:
            time.sleep(delay)
        if not os.path.exists(mark):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            atomic_copy(src, dst)
        except OSError:
            pass                # the request is reported failed by its missing file
        try:
            os.unlink(mark)
        except FileNotFoundError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A file the indexer cannot get past until the test lets it: a FIFO, whose ``open``
for reading blocks until a writer comes (like a file on a hung network share). Named
to sort first, so every file of its folder is reached after it."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = ["HOLD", "hold_scan", "release_scan"]

HOLD = "0-hold.fifo"


def hold_scan(archive: Path) -> Path:
    archive.mkdir(parents=True, exist_ok=True)
    fifo = archive / HOLD
    os.mkfifo(fifo)
    return fifo


def release_scan(fifo: Path, timeout: float = 10.0) -> bool:
    """Let the readers blocked on ``fifo`` go (each reads a few bytes: not DICOM; the
    indexer opens it twice, to look for a bare data set). False if no reader came
    within ``timeout`` s; returns once none came for a second after the last."""
    released = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody reads it (yet, or any more)
            time.sleep(0.02)
            continue
        with contextlib.suppress(OSError):
            os.write(fd, b"not DICOM")
        os.close(fd)
        released = True
        deadline = time.monotonic() + 1.0
    return released

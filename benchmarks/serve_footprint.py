"""What one association costs ``aiodimse serve``: resident memory and file descriptors.

Starts ``python3 -m aiodimse serve`` (whatever PYTHONPATH selects) on loopback with
the association limits raised, reads its RSS (``VmRSS``) and open descriptors
(``/proc/PID/fd``) idle, then with ``--associations`` associations open (each has
answered one C-ECHO, so its per-association state exists), then after they are
released. Prints the difference per association: the figures for sizing a host
(docs/sizing.md). Bounded: every wait has a deadline, the server is stopped in
``finally``.

    PYTHONPATH=$PWD python3 benchmarks/serve_footprint.py [--associations 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiodimse import AE, Association
from benchmarks.procs import stop_process

VERIFICATION = "1.2.840.10008.1.1"
DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def footprint(pid: int) -> tuple[int, int]:
    """(RSS in bytes, open file descriptors) of process ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines()
               if line.startswith("VmRSS:"))
    return rss * 1024, len(os.listdir(f"/proc/{pid}/fd"))


async def settle(pid: int) -> tuple[int, int]:
    """The footprint once it stops changing (the server finishes its work first)."""
    last = footprint(pid)
    for _ in range(20):
        await asyncio.sleep(0.25)
        now = footprint(pid)
        if now[1] == last[1] and abs(now[0] - last[0]) < 64 * 1024:
            return now
        last = now
    return last


async def measure(count: int, data: Path) -> None:
    port = free_port()
    log = open(data / "serve.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiodimse", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--data", str(data / "data"), "-aet", "ARCHIVE", "--log-level", "WARNING",
         "--max-associations", str(count + 16), "--max-associations-per-address", "0",
         "--max-associations-per-ae", "0", "--max-pending", str(count + 16),
         "--max-pending-per-address", "0"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("serve did not start: " + (data / "serve.log").read_text())
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # its start-up work (scan, deliverers) done
        idle = await settle(proc.pid)
        ae = AE("FOOTPRINT")
        ae.add_requested_context(VERIFICATION)
        ae.acse_timeout = ae.dimse_timeout = DEADLINE
        associations: list[Association] = []
        for start in range(0, count, 100):  # 100 set-ups at a time
            batch = await asyncio.gather(*(ae.associate("127.0.0.1", port, ae_title="ARCHIVE")
                                           for _ in range(start, min(start + 100, count))))
            associations.extend(batch)
        await asyncio.gather(*(a.send_c_echo() for a in associations))
        busy = await settle(proc.pid)
        await asyncio.gather(*(a.release() for a in associations))
        after = await settle(proc.pid)
    finally:
        stop_process(proc, 10)
        log.close()
    per_rss = (busy[0] - idle[0]) / count
    per_fd = (busy[1] - idle[1]) / count
    print(f"aiodimse serve, {count} associations (one C-ECHO each), Python "
          f"{sys.version.split()[0]}")
    print(f"idle:     RSS {idle[0] / 2**20:7.1f} MiB, {idle[1]:5d} file descriptors")
    print(f"open:     RSS {busy[0] / 2**20:7.1f} MiB, {busy[1]:5d} file descriptors")
    print(f"released: RSS {after[0] / 2**20:7.1f} MiB, {after[1]:5d} file descriptors")
    print(f"per association: {per_rss / 1024:.1f} KiB RSS, {per_fd:.2f} file descriptors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--associations", type=int, default=1000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 2 * args.associations + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # the server inherits it
    with tempfile.TemporaryDirectory(prefix="serve-footprint-") as folder:
        asyncio.run(measure(args.associations, Path(folder)))


if __name__ == "__main__":
    main()

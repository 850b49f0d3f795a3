"""Process plumbing for the benchmark: server subprocesses, /proc readings, pinning.

Every subprocess started here is terminated (then killed) in a ``finally`` — also on
KeyboardInterrupt — and only ever listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import queue
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

__all__ = [
    "HOST",
    "REPO",
    "NotAvailable",
    "ServerProcess",
    "LineReader",
    "raise_nofile",
    "CpuSample",
    "cpu_between",
    "cpu_sample",
    "cpu_seconds",
    "proc_status_kb",
    "pin",
    "cpu_count",
    "run_loop",
    "server",
    "stop_process",
]

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")


class NotAvailable(Exception):
    """A contender cannot run here; the message says why (reported as n/a)."""


def set_nodelay(transport: asyncio.BaseTransport) -> asyncio.Transport:
    """TCP_NODELAY on a new connection; returns it typed as a stream transport.

    uvloop's transports are not asyncio.Transport subclasses, hence the cast.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return cast(asyncio.Transport, transport)


def raise_nofile(want: int = 65536) -> int:
    """Raise RLIMIT_NOFILE's soft limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class CpuSample(NamedTuple):
    """A process's CPU time two ways: in clock ticks, and exact for its live threads."""

    ticks: float  # /proc/<pid>/stat: every thread, dead ones included; 10 ms steps
    exact: float  # the sum of /proc/<pid>/task/*/schedstat run times (ns); nan if absent


def cpu_sample(pid: int) -> CpuSample:
    exact, read = 0.0, 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread may end while we look
                exact += int((task / "schedstat").read_text().split()[0]) / 1e9
                read += 1
    except (OSError, ValueError, IndexError):
        read = 0
    return CpuSample(cpu_seconds(pid), exact if read else math.nan)  # nan: no schedstat


def cpu_between(first: CpuSample, last: CpuSample) -> float:
    """CPU seconds used between two samples.

    Row 5's runs last tens of milliseconds, a few clock ticks: the exact count is
    used, unless the tick count is ahead of it by more than two ticks (threads that
    ended in between took their time with them, as pynetdicom's do).
    """
    ticks = last.ticks - first.ticks
    exact = last.exact - first.exact
    if math.isnan(exact) or ticks - exact > 2 / _TICK:
        return ticks
    return exact


def proc_status_kb(pid: int, key: str) -> int:
    """A kB value (VmRSS, VmHWM, Threads...) from /proc/<pid>/status; -1 if missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return -1
    return -1


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pin(pid: int, cpus: set[int] | None) -> bool:
    """Pin a process (all its threads) to `cpus`; False where not possible."""
    if not cpus:
        return False
    try:
        os.sched_setaffinity(pid, cpus)
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), cpus)
    except OSError:
        return False
    return True


def run_loop(main: Coroutine[Any, Any, Any], loop: str) -> Any:
    """asyncio.run with the default loop or uvloop ("asyncio" / "uvloop")."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def stop_process(proc: subprocess.Popen[Any], grace: float = 3.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class LineReader:
    """Reads a subprocess's stdout lines on a thread, so that waits have deadlines."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._queue.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass
        self._queue.put(None)

    def get(self, timeout: float) -> str | None:
        """Next line, None at EOF; raises TimeoutError."""
        try:
            return self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            raise TimeoutError from None

    def expect(self, prefix: str, deadline: float) -> str:
        """The rest of the next line starting with `prefix` (other lines are skipped)."""
        while True:
            line = self.get(deadline - time.monotonic())
            if line is None:
                raise EOFError(f"process ended before {prefix!r}")
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
            if line.startswith("NA "):
                raise NotAvailable(line[3:].strip())


@dataclass
class ServerProcess:
    name: str
    proc: subprocess.Popen[str]
    port: int
    log: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> CpuSample:
        return cpu_sample(self.pid)

    def rss_kb(self) -> int:
        return proc_status_kb(self.pid, "VmRSS")

    def hwm_kb(self) -> int:
        return proc_status_kb(self.pid, "VmHWM")

    def threads(self) -> int:
        return proc_status_kb(self.pid, "Threads")

    def log_tail(self, n: int = 400) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@contextlib.contextmanager
def server(
    name: str,
    module: str,
    args: list[str],
    *,
    cpus: set[int] | None = None,
    ready_timeout: float = 20.0,
    log_dir: Path | None = None,
    on_start: Callable[[ServerProcess], None] | None = None,
) -> Iterator[ServerProcess]:
    """Start ``python -m <module> --port 0 <args>``, wait for ``READY <port>`` on its
    stdout (or ``NA <reason>`` -> NotAvailable), yield it, always stop it."""
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log = log_dir / f"bench-server-{name}-{os.getpid()}.log"
    cmd = [sys.executable, "-m", module, "--host", HOST, "--port", "0", *args]
    with open(log, "w") as err:
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True
        )
    sp: ServerProcess | None = None
    try:
        reader = LineReader(proc.stdout)  # type: ignore[arg-type]
        try:
            port = int(reader.expect("READY", time.monotonic() + ready_timeout))
        except NotAvailable:
            raise
        except (TimeoutError, EOFError, ValueError) as exc:
            tail = log.read_text(errors="replace")[-300:].strip().replace("\n", " | ")
            raise NotAvailable(f"server did not start ({exc!r}): {tail}") from None
        sp = ServerProcess(name, proc, port, log)
        pin(proc.pid, cpus)
        if on_start:
            on_start(sp)
        yield sp
    finally:
        stop_process(proc)

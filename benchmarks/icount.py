"""Server instructions per operation, counted by valgrind: repeatable on a noisy machine.

    python3 benchmarks/icount.py [--mode dimse|assoc] [--op OP] [--refs K] [--no-reply]
                                 [--contenders aiodimse,ceiling] [--counts 500,2500]
                                 [--assoc N] [--loop asyncio|uvloop] [--scu]

Each contender's server runs under ``valgrind --tool=callgrind`` on 127.0.0.1 while
the load generator (not under valgrind) drives one association (``--assoc N``: N
sharing the operations, as in row 5; ``--mode assoc``: one lane of associate +
release) for N operations; the server's user-space instruction total is read when it
exits. Two runs with different N give instructions per operation without start-up
and shutdown. ``--scu`` counts aiodimse's SCU instead (row 7's client, ``--op``,
``--loop``), against the ceiling run outside valgrind. Counts do not depend on what
else the machine is doing, so small changes show where run.py's rates drown them in
noise. They leave out the kernel (system calls cost the same for every contender)
and weigh all instructions alike (a memcpy counts per byte moved), so they guide
optimisation; run.py remains the measure of record. A full garbage collection in one
of the two runs and not the other shifts the result (tens of millions of instructions
each), hence the fixed hash seed and counts large enough to spread it; repeat a
measurement before trusting a small difference.

Row 8's reply path (benchmarks/replies.py): ``--op naction-reply`` (the same Action
Reply each time), ``naction-reply-new`` (a new one per request), ``nget`` (20
attributes), ``ncreate``; ``--no-reply`` counts the same handlers returning
``(0x0000, None)`` (``none`` for naction-reply, else ``dropped``), row 8's baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"Collected : (\d+)")
SERVERS = {"aiodimse": "benchmarks.servers.aiodimse_scp", "ceiling": "benchmarks.servers.ceiling"}
# --op -> (the load's --op, the aiodimse server's --replies with and without the reply)
OPS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "naction": ("naction", None),
    "echo": ("echo", None),
    "naction-reply": ("naction", ("same", "none")),
    "naction-reply-new": ("naction", ("new", "dropped")),
    "nget": ("nget", ("new", "dropped")),
    "ncreate": ("ncreate", ("new", "dropped")),
}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# A Python program under callgrind, counting only; the same dict layouts each run.
# OpenBLAS (numpy, which pydicom imports when installed) starts a thread per core whose
# idle spin, stretched by valgrind's serialised threads, would count as the server's
# (natively it sleeps: no CPU under load); with one thread it starts none.
_CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable)
_ENV = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}


def _collected(report: str) -> int:
    """The instruction total in valgrind's report."""
    found = _COLLECTED.findall(report)
    if not found:
        raise RuntimeError(f"no instruction count from valgrind:\n{report[-2000:]}")
    return int(found[-1])


def total_instructions(module: str, ops: int, load_args: list[str], timeout: float, *,
                       server_args: tuple[str, ...] = (), assoc: int = 1) -> int:
    """Instructions the server executed from start to exit, serving ``ops`` operations."""
    port = _free_port()
    # valgrind's report goes to a file: a pipe nobody reads could fill up and block.
    with tempfile.TemporaryFile(mode="w+") as errors:
        server = subprocess.Popen(
            [*_CALLGRIND, "-m", module, "--port", str(port), *server_args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=errors, text=True, env=_ENV,
        )
        try:
            _serve_load(server, module, port, ops=ops, load_args=load_args, timeout=timeout,
                        assoc=assoc)
        finally:
            with contextlib.suppress(ProcessLookupError):
                server.kill()
            server.wait()
        errors.seek(0)
        return _collected(errors.read())


def _wait_ready(server: subprocess.Popen[str], module: str, timeout: float) -> None:
    assert server.stdout is not None
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline and not line.startswith("READY"):
        line = server.stdout.readline()
        if not line and server.poll() is not None:
            raise RuntimeError(f"{module} exited before READY")
    if not line.startswith("READY"):
        raise RuntimeError(f"{module} not ready within {timeout}s")


def _serve_load(server: subprocess.Popen[str], module: str, port: int, *, ops: int,
                load_args: list[str], timeout: float, assoc: int = 1) -> None:
    """Wait for READY, run the load for ``ops`` operations, then stop the server."""
    _wait_ready(server, module, timeout)
    if ops % assoc:
        raise ValueError(f"{ops} operations do not split evenly over {assoc} associations")
    load = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--port", str(port), "--assoc", str(assoc),
         "--per-assoc", str(ops // assoc), "--duration", str(timeout), *load_args],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )
    if f'"ok": {ops},' not in load.stdout:
        raise RuntimeError(f"the load did not complete {ops} operations:\n{load.stdout}")
    server.terminate()
    server.wait(timeout=timeout)


def scu_instructions(ops: int, op: str, loop: str, timeout: float) -> int:
    """Instructions aiodimse's SCU (row 7's client) executed for ``ops`` requests.

    The ceiling answers, outside valgrind; the client runs under it from start to exit.
    """
    port = _free_port()
    ceiling = subprocess.Popen(
        [sys.executable, "-m", SERVERS["ceiling"], "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        _wait_ready(ceiling, SERVERS["ceiling"], timeout)
        client = subprocess.run(
            [*_CALLGRIND, "-m", "benchmarks.clients.aiodimse_scu", "--port", str(port),
             "--op", op, "--loop", loop, "--max-ops", str(ops), "--duration", str(timeout)],
            check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=_ENV,
        )
    finally:
        ceiling.kill()
        ceiling.wait()
    if f'"ok": {ops},' not in client.stdout:
        raise RuntimeError(f"the SCU did not complete {ops} requests:\n{client.stdout[-2000:]}")
    return _collected(client.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mode", choices=("dimse", "assoc"), default="dimse")
    parser.add_argument("--op", choices=tuple(OPS), default="naction")
    parser.add_argument("--no-reply", action="store_true",
                        help="row 8's ops: the handlers that send no reply")
    parser.add_argument("--refs", type=int, default=1)
    parser.add_argument("--contenders", default="aiodimse,ceiling")
    parser.add_argument("--counts", default="500,2500", help="the two operation counts")
    parser.add_argument("--assoc", type=int, default=1,
                        help="associations sharing the operations (dimse mode)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--scu", action="store_true",
                        help="count aiodimse's SCU against the ceiling instead (row 7)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    low, high = (int(n) for n in args.counts.split(","))
    load_op, modes = OPS[args.op]
    if args.scu and modes is not None:
        parser.error("--scu counts naction or echo")
    if args.scu:
        first = scu_instructions(low, args.op, args.loop, args.timeout)
        second = scu_instructions(high, args.op, args.loop, args.timeout)
        print(f"aiodimse SCU {(second - first) / (high - low):12,.0f} instructions per request")
        return 0
    load_args = ["--mode", args.mode, "--op", load_op, "--refs", str(args.refs)]
    results = {}
    for name in args.contenders.split(","):
        server_args: tuple[str, ...] = ("--loop", args.loop)
        if modes is not None:
            server_args += ("--replies",) if name == "ceiling" else (
                "--replies", modes[1] if args.no_reply else modes[0])
        first = total_instructions(SERVERS[name], low, load_args, args.timeout,
                                   server_args=server_args, assoc=args.assoc)
        second = total_instructions(SERVERS[name], high, load_args, args.timeout,
                                    server_args=server_args, assoc=args.assoc)
        results[name] = (second - first) / (high - low)
        print(f"{name:10} {results[name]:12,.0f} instructions per operation", flush=True)
    if "ceiling" in results and "aiodimse" in results:
        print(f"aiodimse / ceiling: {results['aiodimse'] / results['ceiling']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Soak: hostile peers hold connections against ``aiodimse serve`` while a real client echoes.

Starts ``python -m aiodimse serve --max-associations 64`` (its other settings at
their defaults), then, for ``--seconds``:

- a hostile process (``--role hostile``) keeps ``--hostile`` connections open from
  ``--addresses`` loopback addresses (127.0.0.2, 127.0.0.3, ...), re-opening each one
  ``--backoff`` s after the server drops it. Each connection plays one part, in turn:
  ``silent`` (connects, sends nothing), ``trickle-rq`` (its A-ASSOCIATE-RQ at
  ``--trickle-rate`` bytes/s), ``trickle-pdata`` (associates, then a C-ECHO-RQ at
  ``--trickle-rate`` bytes/s), ``tiny-pdvs`` (associates, then every 0.5 s a
  P-DATA-TF of 64 empty command PDVs, none the last) and ``oversize`` (a PDU
  declaring 4 GiB - 16, before or after associating);
- a legitimate client (this process, from 127.0.0.1, calling ``ECHOSCU``)
  associates, sends one C-ECHO and releases, every ``--interval`` s.

It prints the echo success rate, p50/p99 of the time from connect to the C-ECHO
response, and the server's peak RSS (``VmHWM``). Figures only: it asserts nothing
(the targets are >= 99 %, p99 < 100 ms, RSS < 512 MB; a shared machine is noisy).

    PYTHONPATH=$PWD python3 -m benchmarks.soak --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks import pdus
from benchmarks.procs import proc_status_kb, raise_nofile, stop_process

HOST = "127.0.0.1"
KINDS = ("silent", "trickle-rq", "trickle-pdata", "tiny-pdvs", "oversize")
SERVER_TITLE = "AIODIMSE"
HOSTILE_TITLE = "HOSTILE"
_HDR = struct.Struct(">BBI")
_TINY = _HDR.pack(0x04, 0, 64 * 6) + struct.pack(">IBB", 2, pdus.PC_VERIFICATION, 0x01) * 64
_OVERSIZE_PDATA = _HDR.pack(0x04, 0, 0xFFFFFFF0)
_OVERSIZE_RQ = _HDR.pack(0x01, 0, 0xFFFFFFF0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# -- the hostile side (its own process: its CPU is not the echo client's) ---------------

class _Hostile:
    def __init__(self, port: int, rate: float, backoff: float) -> None:
        self.port, self.rate, self.backoff = port, rate, backoff
        self.opened: Counter[str] = Counter()
        self.failed = 0  # connection attempts refused (not accepted at all)
        self.rq = pdus.build_associate_rq(called=SERVER_TITLE, calling=HOSTILE_TITLE)
        self.echo = pdus.c_echo_rq().render(1)

    async def run(self, kind: str, source: str, until: float) -> None:
        loop = asyncio.get_running_loop()
        turn = 0
        while loop.time() < until:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    HOST, self.port, local_addr=(source, 0)), 5.0)
            except (OSError, asyncio.TimeoutError):
                self.failed += 1
                await asyncio.sleep(self.backoff)
                continue
            self.opened[kind] += 1
            turn += 1
            try:
                await asyncio.wait_for(self._play(kind, turn, reader, writer),
                                       max(until - loop.time(), 0.01))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
            await asyncio.sleep(self.backoff)

    async def _play(self, kind: str, turn: int, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        if kind == "silent":
            await reader.read()
            return
        if kind == "trickle-rq":
            await self._trickle(self.rq, reader, writer)
            await reader.read()
            return
        if kind == "oversize" and turn % 2:
            writer.write(_OVERSIZE_RQ)
            await reader.read()
            return
        writer.write(self.rq)
        header = await reader.readexactly(6)
        await reader.readexactly(_HDR.unpack(header)[2])
        if header[0] != 0x02:  # rejected: wait for the close
            await reader.read()
            return
        if kind == "oversize":
            writer.write(_OVERSIZE_PDATA)
            await reader.read()
        elif kind == "tiny-pdvs":
            while not await _closed_within(reader, 0.5):
                writer.write(_TINY)
        else:  # trickle-pdata: one C-ECHO-RQ after another, each trickled
            while await self._trickle(self.echo, reader, writer):
                pass

    async def _trickle(self, data: bytes, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> bool:
        """Send ``data`` at the trickle rate; False once the server has closed."""
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            if await _closed_within(reader, 1.0 / self.rate):
                return False
        return True


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Read (and drop) what the server sends for ``seconds``; True once it closed."""
    try:
        return await asyncio.wait_for(reader.read(65536), seconds) == b""
    except asyncio.TimeoutError:  # (Python 3.10: not the builtin TimeoutError)
        return False


async def _hostile_main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + args.seconds
    hostile = _Hostile(args.port, args.trickle_rate, args.backoff)
    sources = [f"127.0.0.{2 + i}" for i in range(args.addresses)]
    tasks = [
        asyncio.ensure_future(hostile.run(KINDS[i % len(KINDS)], sources[i % len(sources)],
                                          until))
        for i in range(args.hostile)
    ]
    await asyncio.gather(*tasks, return_exceptions=True)
    opened = " ".join(f"{kind} {hostile.opened[kind]}" for kind in KINDS)
    print(f"hostile connections opened: {sum(hostile.opened.values())} ({opened}); "
          f"refused at connect: {hostile.failed}", flush=True)


# -- the legitimate client and the run -------------------------------------------------

async def _echo_once(ae: object, port: int) -> float | None:
    """Seconds from connect to the C-ECHO response; None if it failed."""
    start = time.perf_counter()
    try:
        assoc = await asyncio.wait_for(
            ae.associate(HOST, port, ae_title=SERVER_TITLE), 5.0)  # type: ignore[attr-defined]
    except Exception:
        return None
    try:
        status = await asyncio.wait_for(assoc.send_c_echo(), 5.0)
        elapsed = time.perf_counter() - start
        ok = int(status.Status) == 0
        await asyncio.wait_for(assoc.release(), 5.0)
    except Exception:
        with contextlib.suppress(Exception):
            assoc.abort()
        return None
    return elapsed if ok else None


async def _echo_loop(port: int, seconds: float, interval: float
                     ) -> tuple[int, list[float]]:
    from aiodimse import AE  # the aiodimse on PYTHONPATH: the code under test

    ae = AE("ECHOSCU")
    ae.add_requested_context(pdus.VERIFICATION)
    ae.acse_timeout = ae.dimse_timeout = ae.connection_timeout = 5.0
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    attempts, times = 0, []
    while loop.time() < until:
        tick = loop.time()
        attempts += 1
        elapsed = await _echo_once(ae, port)
        if elapsed is not None:
            times.append(elapsed)
        await asyncio.sleep(max(interval - (loop.time() - tick), 0.0))
    return attempts, times


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"aiodimse serve exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1.0):
            return
        time.sleep(0.1)
    raise SystemExit("aiodimse serve did not listen")


def _run(args: argparse.Namespace) -> int:
    raise_nofile()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="aiodimse-soak-") as data:
        log = Path(data) / "serve.log"
        with open(log, "wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "aiodimse", "serve", "--host", HOST, "--port",
                 str(port), "--data", str(Path(data) / "db"), "--log-level", "WARNING",
                 "--max-associations", str(args.max_associations), *args.serve_arg],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        hostile: subprocess.Popen[str] | None = None
        try:
            _wait_listening(port, server)
            hostile = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.soak", "--role", "hostile", "--port",
                 str(port), "--seconds", str(args.seconds), "--hostile", str(args.hostile),
                 "--addresses", str(args.addresses), "--trickle-rate",
                 str(args.trickle_rate), "--backoff", str(args.backoff)],
                stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
            time.sleep(min(1.0, args.seconds / 10))  # let the hostile connections in first
            attempts, times = asyncio.run(
                _echo_loop(port, args.seconds - min(1.0, args.seconds / 10), args.interval))
            hwm_kb = proc_status_kb(server.pid, "VmHWM")
            hostile_out, _ = hostile.communicate(timeout=30)
        finally:
            if hostile is not None:
                stop_process(hostile)
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            stop_process(server, grace=15.0)
    ok = len(times)
    print(f"soak: {args.seconds:.0f} s against aiodimse serve (max_associations "
          f"{args.max_associations}), {args.hostile} hostile connections from "
          f"{args.addresses} addresses ({', '.join(KINDS)})")
    print(hostile_out.strip())
    print(f"echo attempts: {attempts}  succeeded: {ok}")
    print(f"echo success: {100.0 * ok / max(attempts, 1):.1f} %")
    if times:
        print(f"echo latency p50: {1000 * _percentile(times, 0.5):.1f} ms  "
              f"p99: {1000 * _percentile(times, 0.99):.1f} ms")
    else:
        print("echo latency p50: n/a  p99: n/a")
    print(f"server RSS peak: {hwm_kb / 1024:.1f} MB" if hwm_kb >= 0 else
          "server RSS peak: n/a")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--hostile", type=int, default=64, help="hostile connections held")
    p.add_argument("--addresses", type=int, default=8, help="loopback addresses they use")
    p.add_argument("--max-associations", type=int, default=64)
    p.add_argument("--interval", type=float, default=0.05, help="s between echo attempts")
    p.add_argument("--trickle-rate", type=float, default=0.5, help="bytes/s")
    p.add_argument("--backoff", type=float, default=0.1, help="s before re-opening")
    p.add_argument("--serve-arg", action="append", default=[],
                   help="one more argument for aiodimse serve (repeatable)")
    p.add_argument("--role", choices=("run", "hostile"), default="run", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 1 <= args.addresses <= 250:
        p.error("--addresses must be 1 to 250")
    if args.role == "hostile":
        raise_nofile()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_hostile_main(args))
        return 0
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())

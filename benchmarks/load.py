"""The load generator: raw precomputed PDUs over asyncio, in one or more processes.

Modes
  dimse  C associations are set up first; then each sends up to K requests (N-ACTION
         or C-ECHO), one at a time or W outstanding when an async ops window was
         negotiated, until K are done or the time limit passes.
  assoc  C lanes each loop connect / A-ASSOCIATE / A-RELEASE / close.
  idle   C associations are set up and held; on GO each sends one C-ECHO.
  ping   the raw-transport floor: the same byte counts against ``servers/pingpong``.

A run is driven by :func:`measure`: it starts the worker processes
(``python -m benchmarks.load --worker SPEC``), pins them, waits for each to print
``READY`` (set-up done), samples the server's CPU time, sends ``GO``, collects each
worker's ``DONE <json>`` and samples the server again. Every wait has a deadline and
every worker is killed in ``finally``.

Ad hoc: ``python -m benchmarks.load --port 11112 --mode dimse --assoc 1 --refs 10``.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from benchmarks import pdus
from benchmarks.procs import (
    HOST,
    REPO,
    LineReader,
    cpu_between,
    cpu_sample,
    pin,
    proc_status_kb,
    raise_nofile,
    run_loop,
    set_nodelay,
    stop_process,
)

__all__ = ["LoadSpec", "LoadResult", "measure", "percentile"]

_HDR = struct.Struct(">BxI")
_PDV = struct.Struct(">IBB")
_US = struct.Struct("<H")
_FRAME = struct.Struct(">II")
MAX_ACCEPTED_PDU = 1 << 22


@dataclass
class LoadSpec:
    mode: str = "dimse"  # dimse | assoc | idle | ping
    port: int = 11112
    host: str = HOST
    n_assoc: int = 1  # C
    per_assoc: int = 1_000_000  # K (bounded by `duration` as well)
    window: int = 1  # W wanted; the negotiated value caps it
    propose_window: int = 0  # >0: propose (W, W) in A-ASSOCIATE-RQ
    op: str = "naction"  # naction | echo | nget | ncreate (row 8, benchmarks/replies.py)
    n_refs: int = 1
    duration: float = 2.0  # seconds of measurement, at most
    setup_timeout: float = 30.0  # for establishing all C associations
    op_timeout: float = 10.0  # a response later than this is a failure
    connect_concurrency: int = 128
    ping_req: int = 0
    ping_rsp: int = 0
    loop: str = "uvloop"
    keep_latencies: bool = True
    dataset_file: str = ""  # the encoded action information, written by measure()


@dataclass
class LoadResult:
    ok: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    rate: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    established: int = 0
    setup_failures: int = 0
    window: int = 1
    gen_cpu_pct: float = 0.0  # generator CPU, percent of one core, all workers
    server_cpu_us_per_op: float = float("nan")
    server_cpu_pct: float = float("nan")
    server_hwm_kb: int = -1
    server_rss_before_kb: int = -1
    server_rss_established_kb: int = -1
    idle_cpu_pct: float = float("nan")
    server_alive: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[idx])


# ---------------------------------------------------------------------------------
# worker side


class Stats:
    __slots__ = ("errors", "failures", "keep", "lat_us", "ok")

    def __init__(self, keep: bool) -> None:
        self.ok = 0
        self.failures = 0
        self.errors: list[str] = []
        self.lat_us: list[int] = []
        self.keep = keep

    def fail(self, why: str) -> None:
        self.failures += 1
        if len(self.errors) < 5:
            self.errors.append(why)


class DimseClient(asyncio.Protocol):
    """One association: parses PDU framing and response command sets."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.cmd = bytearray()
        self.pending: tuple[int, int] | None = None  # (message id, status) awaiting data
        self.transport: asyncio.Transport | None = None
        self.ac: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.rp: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_response: Callable[[int, int], None] = self._unexpected
        self.lost = False

    def _unexpected(self, mid: int, status: int) -> None:
        pass

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = set_nodelay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.transport = None
        why = ConnectionError(f"connection lost: {exc!r}")
        for fut in (self.ac, self.rp):
            if not fut.done():
                fut.set_exception(why)
                fut.exception()  # mark retrieved
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        n, pos = len(buf), 0
        while n - pos >= 6:
            ptype, plen = _HDR.unpack_from(buf, pos)
            end = pos + 6 + plen
            if plen > MAX_ACCEPTED_PDU:
                self.abort()
                return
            if end > n:
                break
            if ptype == 4:
                self._p_data(buf, pos + 6, end)
            elif ptype == 2:
                if not self.ac.done():
                    self.ac.set_result(bytes(buf[pos:end]))
            elif ptype == 3:
                if not self.ac.done():
                    self.ac.set_exception(
                        ConnectionRefusedError(f"A-ASSOCIATE-RJ {buf[pos + 7 : end].hex()}")
                    )
            elif ptype == 6:
                if not self.rp.done():
                    self.rp.set_result(None)
            elif ptype == 7:
                self.abort(send=False)
                return
            pos = end
        if pos:
            del buf[:pos]

    def _p_data(self, buf: bytearray, pos: int, end: int) -> None:
        while pos + 6 <= end:
            ilen, _, mch = _PDV.unpack_from(buf, pos)
            frag_end = pos + 4 + ilen
            if mch & 1:
                self.cmd += buf[pos + 6 : frag_end]
                if mch & 2:
                    _, mid, status, dst = pdus.scan_command(self.cmd)
                    self.cmd.clear()
                    if dst == pdus.NO_DATASET:
                        self.on_response(mid, status)
                    else:
                        self.pending = (mid, status)
            elif mch & 2 and self.pending is not None:
                mid, status = self.pending
                self.pending = None
                self.on_response(mid, status)
            pos = frag_end

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def abort(self, send: bool = True) -> None:
        if self.transport is not None:
            if send:
                self.transport.write(pdus.A_ABORT)
            self.transport.close()


class Lane:
    """Drives requests on one association: W outstanding, K in total, until deadline."""

    def __init__(
        self,
        client: DimseClient,
        tpl: pdus.MessageTemplate,
        *,
        stats: Stats,
        total: int,
        window: int,
        deadline: float,
    ) -> None:
        self.client = client
        self.head, self.tail = tpl.head, tpl.tail
        self.stats = stats
        self.remaining = total
        self.window = window
        self.deadline = deadline
        self.outstanding: dict[int, float] = {}
        self.next_id = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        client.on_response = self.on_response

    def start(self) -> None:
        for _ in range(min(self.window, self.remaining)):
            self._send(time.perf_counter())
        self._maybe_done()

    def _send(self, now: float) -> None:
        mid = self.next_id % 65535 + 1
        self.next_id = mid
        self.remaining -= 1
        self.outstanding[mid] = now
        self.client.write(self.head + _US.pack(mid) + self.tail)

    def on_response(self, mid: int, status: int) -> None:
        now = time.perf_counter()
        sent = self.outstanding.pop(mid, None)
        stats = self.stats
        if sent is None:
            stats.fail(f"response to unknown message ID {mid}")
        elif status != 0:
            stats.fail(f"status 0x{status:04X}")
        else:
            stats.ok += 1
            if stats.keep:
                stats.lat_us.append(int((now - sent) * 1e6))
        if self.remaining > 0 and now < self.deadline and not self.client.lost:
            self._send(now)
        self._maybe_done()

    def _maybe_done(self) -> None:
        if not self.outstanding and not self.done.done():
            self.done.set_result(None)

    def give_up(self, why: str) -> None:
        for _ in self.outstanding:
            self.stats.fail(why)
        self.outstanding.clear()
        self._maybe_done()


class PingClient(asyncio.Protocol):
    """Raw TCP ping-pong, mirroring Lane+DimseClient without any DICOM."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.expect = 0
        self.got = 0
        self.on_reply: Callable[[], None] = lambda: None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = set_nodelay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        while self.expect and self.got >= self.expect:
            self.got -= self.expect
            self.on_reply()


class PingLane:
    def __init__(self, client: PingClient, spec: LoadSpec, stats: Stats, deadline: float) -> None:
        self.client = client
        self.frame = _FRAME.pack(spec.ping_req, spec.ping_rsp) + bytes(spec.ping_req - 8)
        client.expect = spec.ping_rsp
        client.on_reply = self.on_reply
        self.stats = stats
        self.remaining = spec.per_assoc
        self.window = spec.window
        self.deadline = deadline
        self.sent: list[float] = []  # replies come back in order
        self.head = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        for _ in range(min(self.window, self.remaining)):
            self._send(time.perf_counter())

    def _send(self, now: float) -> None:
        self.remaining -= 1
        self.sent.append(now)
        if self.client.transport is not None:
            self.client.transport.write(self.frame)

    def on_reply(self) -> None:
        now = time.perf_counter()
        sent = self.sent[self.head]
        self.head += 1
        self.stats.ok += 1
        if self.stats.keep:
            self.stats.lat_us.append(int((now - sent) * 1e6))
        if self.remaining > 0 and now < self.deadline:
            self._send(now)
        if self.head == len(self.sent) and not self.done.done():
            self.done.set_result(None)

    def give_up(self, why: str) -> None:
        for _ in range(len(self.sent) - self.head):
            self.stats.fail(why)
        self.head = len(self.sent)
        if not self.done.done():
            self.done.set_result(None)


def _template(spec: LoadSpec, echo: bool = False) -> pdus.MessageTemplate:
    if echo or spec.op == "echo":
        return pdus.c_echo_rq()
    if spec.op in ("nget", "ncreate"):
        from benchmarks import replies

        return replies.n_get_rq() if spec.op == "nget" else replies.n_create_rq()
    if spec.dataset_file:  # encoded by the coordinator: workers skip importing pydicom
        with open(spec.dataset_file, "rb") as f:
            return pdus.n_action_rq_for(f.read())
    return pdus.n_action_rq(spec.n_refs)


def _dataset_file(n_refs: int) -> str:
    path = os.path.join(tempfile.gettempdir(), f"aiodimse-bench-stgcmt-{n_refs}-{os.getpid()}.bin")
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(pdus.stgcmt_dataset(n_refs))
        os.replace(tmp, path)
        atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


async def _associate(spec: LoadSpec, rq: bytes, timeout: float) -> tuple[DimseClient, int]:
    """Connect and associate; returns the client and the negotiated window."""
    loop = asyncio.get_running_loop()
    transport, client = await asyncio.wait_for(
        loop.create_connection(DimseClient, spec.host, spec.port), timeout
    )
    try:
        client.write(rq)
        ac = await asyncio.wait_for(client.ac, timeout)
    except BaseException:
        transport.abort()
        raise
    window = 1
    if spec.propose_window:
        granted = pdus.parse_ac_window(ac)
        if granted is not None:
            # The peer's max-ops-performed bounds what we may invoke; 0 is unlimited.
            perf = granted[1]
            window = spec.window if perf == 0 else min(spec.window, perf)
    return client, window


async def _release(client: DimseClient, timeout: float) -> None:
    if client.lost:
        return
    client.write(pdus.A_RELEASE_RQ)
    try:
        await asyncio.wait_for(client.rp, timeout)
    except (asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        if client.transport is not None:
            client.transport.close()


async def _setup(spec: LoadSpec, stats: Stats) -> tuple[list[DimseClient], int]:
    contexts: tuple[tuple[int, str], ...] = (
        (pdus.PC_STGCMT, pdus.STGCMT_CLASS), (pdus.PC_VERIFICATION, pdus.VERIFICATION))
    if spec.op in ("nget", "ncreate"):
        contexts += ((pdus.PC_MPPS, pdus.MPPS_CLASS),)
    rq = pdus.build_associate_rq(
        contexts=contexts,
        window=(spec.propose_window, spec.propose_window) if spec.propose_window else None,
    )
    sem = asyncio.Semaphore(spec.connect_concurrency)
    deadline = time.monotonic() + spec.setup_timeout
    clients: list[DimseClient] = []
    windows: list[int] = []

    async def one() -> None:
        async with sem:
            left = deadline - time.monotonic()
            if left <= 0:
                stats.fail("setup deadline passed")
                return
            try:
                client, window = await _associate(spec, rq, left)
            except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
                stats.fail(f"associate: {exc!r}")
                return
            clients.append(client)
            windows.append(window)

    await asyncio.gather(*(one() for _ in range(spec.n_assoc)))
    return clients, (min(windows) if windows else 1)


async def _await_lanes(lanes: list[Any], limit: float) -> None:
    if not lanes:
        return
    _, pending = await asyncio.wait([lane.done for lane in lanes], timeout=max(limit, 0.01))
    if pending:
        for lane in lanes:
            if not lane.done.done():
                lane.give_up("timeout waiting for response")


async def _assoc_loop(spec: LoadSpec, stats: Stats, deadline: float) -> None:
    rq = pdus.build_associate_rq()

    async def lane() -> None:
        for _ in range(spec.per_assoc):
            if time.perf_counter() >= deadline:
                return
            t0 = time.perf_counter()
            try:
                client, _ = await _associate(spec, rq, spec.op_timeout)
                client.write(pdus.A_RELEASE_RQ)
                await asyncio.wait_for(client.rp, spec.op_timeout)
                if client.transport is not None:
                    client.transport.close()
            except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
                stats.fail(f"cycle: {exc!r}")
                continue
            stats.ok += 1
            if stats.keep:
                stats.lat_us.append(int((time.perf_counter() - t0) * 1e6))

    await asyncio.gather(*(lane() for _ in range(spec.n_assoc)))


async def _stdin_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def worker(spec: LoadSpec) -> dict[str, Any]:
    stats = Stats(spec.keep_latencies)
    setup_stats = Stats(False)
    clients: list[DimseClient] = []
    pings: list[PingClient] = []
    window = 1
    loop = asyncio.get_running_loop()
    # Build the request bytes (pydicom import and encoding) before the measured phase.
    tpl = _template(spec, echo=spec.mode == "idle")
    if spec.mode in ("dimse", "idle"):
        clients, window = await _setup(spec, setup_stats)
    elif spec.mode == "ping":
        for _ in range(spec.n_assoc):
            try:
                _, pc = await asyncio.wait_for(
                    loop.create_connection(PingClient, spec.host, spec.port), spec.setup_timeout
                )
                pings.append(pc)
            except (OSError, asyncio.TimeoutError) as exc:
                setup_stats.fail(repr(exc))
        window = spec.window
    established = len(clients) or len(pings)
    print("READY " + json.dumps({"established": established}), flush=True)
    go = await _stdin_line()
    if not go.startswith("GO"):
        return {}
    t0, c0 = time.monotonic(), time.process_time()
    deadline = time.perf_counter() + spec.duration
    if spec.mode == "dimse":
        lanes = [
            Lane(c, tpl, stats=stats, total=spec.per_assoc, window=window, deadline=deadline)
            for c in clients
        ]
        for lane in lanes:
            lane.start()
        await _await_lanes(lanes, spec.duration + spec.op_timeout)
    elif spec.mode == "idle":
        lanes = [
            Lane(c, tpl, stats=stats, total=1, window=1, deadline=deadline + spec.op_timeout)
            for c in clients
        ]
        for lane in lanes:
            if lane.client.lost:
                stats.fail("connection closed while idle")
                lane.done.set_result(None)
            else:
                lane.start()
        await _await_lanes(lanes, spec.duration + spec.op_timeout)
    elif spec.mode == "ping":
        plane = [PingLane(p, spec, stats, deadline) for p in pings]
        for pl in plane:
            pl.start()
        await _await_lanes(plane, spec.duration + spec.op_timeout)
    elif spec.mode == "assoc":
        await asyncio.wait_for(
            _assoc_loop(spec, stats, deadline), spec.duration + spec.op_timeout + 5
        )
    t1, c1 = time.monotonic(), time.process_time()
    result = {
        "ok": stats.ok,
        "failures": stats.failures + setup_stats.failures,
        "setup_failures": setup_stats.failures,
        "errors": setup_stats.errors[:3] + stats.errors[:3],
        "t0": t0,
        "t1": t1,
        "cpu": c1 - c0,
        "established": established,
        "window": window,
        "lat_us": stats.lat_us,
    }
    print("DONE " + json.dumps(result), flush=True)
    # Tear down (not measured): release politely, abort idle crowds.
    if spec.mode == "idle":
        for c in clients:
            c.abort()
    else:
        await asyncio.gather(*(_release(c, 3.0) for c in clients))
    for p in pings:
        if p.transport is not None:
            p.transport.close()
    await asyncio.sleep(0)
    return result


# ---------------------------------------------------------------------------------
# coordinator side


def _split(n: int, parts: int) -> list[int]:
    parts = max(1, min(parts, n))
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def measure(
    spec: LoadSpec,
    *,
    server_pid: int | None = None,
    procs: int = 1,
    cpus: set[int] | None = None,
    idle_seconds: float = 0.0,
) -> LoadResult:
    """Run `spec` split over `procs` worker processes and aggregate the results."""
    workers: list[tuple[subprocess.Popen[str], LineReader]] = []
    res = LoadResult()
    stage = "start"
    if server_pid is not None:
        res.server_rss_before_kb = proc_status_kb(server_pid, "VmRSS")
    try:
        if spec.op == "naction" and spec.mode == "dimse" and not spec.dataset_file:
            spec = replace(spec, dataset_file=_dataset_file(spec.n_refs))
        for share in _split(spec.n_assoc, procs):
            wspec = LoadSpec(**{**asdict(spec), "n_assoc": share})
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.load", "--worker", json.dumps(asdict(wspec))],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            pin(proc.pid, cpus)
            assert proc.stdout is not None
            workers.append((proc, LineReader(proc.stdout)))
        stage = "set-up"
        setup_deadline = time.monotonic() + spec.setup_timeout + 30
        for _, reader in workers:
            ready = json.loads(reader.expect("READY", setup_deadline))
            res.established += int(ready["established"])
        if server_pid is not None:
            res.server_rss_established_kb = proc_status_kb(server_pid, "VmRSS")
            if idle_seconds > 0:
                c0 = cpu_sample(server_pid)
                time.sleep(idle_seconds)
                used = cpu_between(c0, cpu_sample(server_pid))
                res.idle_cpu_pct = 100 * used / idle_seconds
            s0, w0 = cpu_sample(server_pid), time.monotonic()
        for proc, _ in workers:
            assert proc.stdin is not None
            proc.stdin.write("GO\n")
            proc.stdin.flush()
        stage = "measurement"
        done_deadline = time.monotonic() + spec.duration + spec.op_timeout + 30
        outs = [json.loads(reader.expect("DONE", done_deadline)) for _, reader in workers]
        if server_pid is not None:
            s1, w1 = cpu_sample(server_pid), time.monotonic()
            res.server_hwm_kb = proc_status_kb(server_pid, "VmHWM")
            res.server_alive = os.path.exists(f"/proc/{server_pid}")
    except TimeoutError:
        raise TimeoutError(f"load workers did not finish the {stage} in time") from None
    finally:
        for proc, _ in workers:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
        end = time.monotonic() + 10
        for proc, _ in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, end - time.monotonic()))
            stop_process(proc)
    lat: list[int] = []
    for out in outs:
        res.ok += out["ok"]
        res.failures += out["failures"]
        res.setup_failures += out["setup_failures"]
        res.errors.extend(out["errors"])
        lat.extend(out["lat_us"])
    res.errors = res.errors[:5]
    res.window = min(out["window"] for out in outs)
    t0 = min(out["t0"] for out in outs)
    t1 = max(out["t1"] for out in outs)
    res.elapsed = max(t1 - t0, 1e-9)
    res.rate = res.ok / res.elapsed
    res.gen_cpu_pct = 100 * sum(out["cpu"] for out in outs) / res.elapsed
    lat.sort()
    res.p50_ms = percentile(lat, 0.50) / 1000
    res.p99_ms = percentile(lat, 0.99) / 1000
    if server_pid is not None:
        ops = max(res.ok, 1)
        used = cpu_between(s0, s1)
        res.server_cpu_us_per_op = 1e6 * used / ops
        res.server_cpu_pct = 100 * used / max(w1 - w0, 1e-9)
    return res


def _main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--mode", default="dimse", choices=("dimse", "assoc", "idle", "ping"))
    parser.add_argument("--op", default="naction", choices=("naction", "echo", "nget", "ncreate"))
    parser.add_argument("--assoc", type=int, default=1)
    parser.add_argument("--per-assoc", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=1)
    parser.add_argument("--refs", type=int, default=1)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--server-pid", type=int)
    args = parser.parse_args()
    raise_nofile()
    if args.worker:
        known = {f.name for f in fields(LoadSpec)}
        spec = LoadSpec(**{k: v for k, v in json.loads(args.worker).items() if k in known})
        loop = spec.loop
        if loop == "uvloop":
            try:
                import uvloop  # noqa: F401
            except ImportError:
                loop = "asyncio"
        run_loop(worker(spec), loop)
        return
    if args.port is None:
        parser.error("--port is required")
    spec = LoadSpec(
        mode=args.mode,
        port=args.port,
        op=args.op,
        n_assoc=args.assoc,
        per_assoc=args.per_assoc,
        window=args.window,
        propose_window=args.window if args.window > 1 else 0,
        n_refs=args.refs,
        duration=args.duration,
    )
    res = measure(spec, server_pid=args.server_pid, procs=args.procs)
    print(json.dumps(res.as_dict(), indent=1))


if __name__ == "__main__":
    _main()

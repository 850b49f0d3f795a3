"""C-FIND returning 10,000 matches over the network: time to the first and matches/s.

C-FIND speed, side by side in one run (reported, never asserted).
An archive index of N studies of one instance each and one series of N instances is
written straight into a data folder's SQLite database (index rows, no files: C-FIND
reads the index only). Two queries, Study Root:

- STUDY: ``PatientName=*`` and a StudyDate range matching the N studies, asking for
  ten keys including the computed ModalitiesInStudy and NumberOfStudyRelatedInstances;
- IMAGE: every instance of the series of N.

Servers, each its own process pinned to CPU 0 (the clients on CPU 1):

- ``aiodimse serve``: the archive's Query/Retrieve SCP over that database (matching,
  the SQL batches and building each answer included);
- ``aiodimse handler``: an aiodimse ``AE`` whose async generator handler yields the
  same answers pre-built (the library's ceiling: networking and encoding only);
- ``pynetdicom handler``: pynetdicom's SCP (TCP_NODELAY on accepted sockets: its
  fair best) with a generator handler yielding the same pre-built answers, as a
  pynetdicom user would write one over a database, except that nothing is looked up
  or built per match: this favours pynetdicom against ``aiodimse serve``, which does
  both.

The answers are the ones ``aiodimse serve`` gives (built once by its query engine in
this process, pickled for the handlers), so every server sends the same identifiers.
Clients: aiodimse's ``send_c_find`` and pynetdicom's ``send_c_find``, one association
each, set up before the clock starts. Time to the first result is from the call to
the first pending identifier in the client's hands; matches/s is N over the time to
the final response. Each server's CPU over the query is read from /proc (µs a match).
Every contender runs each round, in turn; the medians are reported.

    PYTHONPATH=$PWD python3 benchmarks/cfind_many.py [--quick] [--matches 10000]
        [--rounds 5] [--clients aiodimse,pynetdicom] [--no-pin]

Results: the table on stdout, benchmarks/results/cfind_many.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import pickle
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python3 benchmarks/cfind_many.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydicom.dataset import Dataset

from benchmarks.procs import (
    HOST,
    REPO,
    NotAvailable,
    cpu_between,
    cpu_count,
    cpu_sample,
    pin,
    stop_process,
)

__all__ = ["main"]

RESULTS = REPO / "benchmarks" / "results"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
ROOT = "1.2.826.0.1.3680043.10.1451.9"
LEVELS = ("STUDY", "IMAGE")
SERVERS = ("aiodimse serve", "aiodimse handler", "pynetdicom handler")
CEILING, PYN = "aiodimse handler", "pynetdicom handler"
_COLLECTED = re.compile(r"Collected : (\d+)")
ARCHIVE_AET = "ARCHIVE"


# -- the data ------------------------------------------------------------------------

def query(level: str) -> Dataset:
    """The request identifier of each level (module doc): archive_query.py's."""
    from benchmarks.archive_query import query as identifier

    return identifier(level)


async def _build(data: Path, n: int) -> dict[str, list[Dataset]]:
    """The index of ``data`` (module doc); the answers of each level's query."""
    from aiodimse.archive import STUDY_ROOT_FIND as MODEL
    from aiodimse.archive import QueryEngine
    from aiodimse.store import DB_FILENAME, open_store
    from benchmarks.archive_query import record

    store = open_store(str(data / DB_FILENAME))
    try:
        batch: list[Any] = []
        # N studies of one instance in 2024; one study of N instances in 2023
        rows = [(i, f"{ROOT}.1.{i}", f"{ROOT}.2.{i}", f"2024{1 + i % 12:02d}15")
                for i in range(n)]
        rows += [(n + i, f"{ROOT}.1.99999999", f"{ROOT}.2.99999999", "20230615")
                 for i in range(n)]
        for row in rows:
            batch.append(record(*row))
            if len(batch) == 500:
                await store.add_records(batch, 1.0)
                batch.clear()
        if batch:
            await store.add_records(batch, 1.0)
        engine = QueryEngine(store, retrieve_aet=ARCHIVE_AET)
        answers: dict[str, list[Dataset]] = {}
        for level in LEVELS:
            answers[level] = [ds async for ds in engine.find(MODEL, query(level))]
        return answers
    finally:
        await store.aclose()


# -- the servers ---------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Bench:
    """One run's data folder (the index), answers' pickle, scratch folder, matches a
    query and the aiodimse servers' event loop."""

    data: Path
    answers: Path
    work: Path
    n: int
    loop: str


def _command(name: str, bench: Bench, port: int) -> list[str]:
    """The command line of server ``name`` listening on ``port``."""
    data, answers, loop = bench.data, bench.answers, bench.loop
    if name == "aiodimse serve":
        return [sys.executable, "-m", "aiodimse", "--loop", loop, "serve", "--data", str(data),
                "--host", HOST, "--port", str(port), "--aet", ARCHIVE_AET,
                "--log-level", "WARNING"]
    impl = ["--impl", "aiodimse", "--loop", "uvloop" if loop == "uvloop" else "asyncio"] \
        if name == CEILING else ["--impl", "pynetdicom", "--nodelay"]
    return [sys.executable, "-m", "benchmarks.servers.cfind_scp", "--host", HOST,
            "--port", str(port), "--answers", str(answers), *impl]


@contextlib.contextmanager
def _server(name: str, cmd: list[str], port: int, log: Path, *, cpus: set[int] | None = None,
            env: dict[str, str] | None = None, ready: float = 30.0) -> Iterator[int]:
    """Run ``cmd`` (stderr to ``log``); its pid once ``port`` accepts connections.
    Stopped (SIGTERM, then SIGKILL) on the way out."""
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        deadline = time.monotonic() + ready
        while True:
            if proc.poll() is not None:
                raise NotAvailable(f"{name} exited {proc.returncode}: "
                                   f"{log.read_text(errors='replace')[-300:]}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
                break
            if time.monotonic() > deadline:
                raise NotAvailable(f"{name} did not listen within {ready:.0f} s")
            time.sleep(0.05)
        pin(proc.pid, cpus)
        yield proc.pid
    finally:
        stop_process(proc, grace=ready)


# -- the clients ---------------------------------------------------------------------

@dataclass
class Run:
    first: float  # seconds from the call to the first pending identifier
    total: float  # seconds from the call to the final response
    count: int
    server_cpu: float  # seconds
    client_cpu: float  # seconds (this process)


async def _aiodimse_find(port: int, ds: Dataset) -> tuple[float, float, int]:
    from aiodimse import AE

    ae = AE("BENCH_SCU")
    ae.add_requested_context(STUDY_ROOT_FIND)
    assoc = await ae.associate(HOST, port, ae_title=ARCHIVE_AET)
    try:
        first, count = 0.0, 0
        started = time.perf_counter()
        async for status, _identifier in assoc.send_c_find(ds, STUDY_ROOT_FIND):
            if status.Status in (0xFF00, 0xFF01):
                if not count:
                    first = time.perf_counter() - started
                count += 1
            elif status.Status != 0:
                raise RuntimeError(f"C-FIND answered 0x{status.Status:04X}")
        total = time.perf_counter() - started
    finally:
        await assoc.release()
    return first, total, count


def _pynetdicom_find(port: int, ds: Dataset) -> tuple[float, float, int]:
    from pynetdicom import AE

    ae = AE(ae_title="BENCH_SCU")
    ae.add_requested_context(STUDY_ROOT_FIND)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    assoc = ae.associate(HOST, port, ae_title=ARCHIVE_AET)
    if not assoc.is_established:
        raise RuntimeError("pynetdicom SCU: no association")
    try:
        first, count = 0.0, 0
        started = time.perf_counter()
        for status, _identifier in assoc.send_c_find(ds, STUDY_ROOT_FIND):
            if status is None or "Status" not in status:
                raise RuntimeError("pynetdicom SCU: no response (timeout or abort)")
            if status.Status in (0xFF00, 0xFF01):
                if not count:
                    first = time.perf_counter() - started
                count += 1
            elif status.Status != 0:
                raise RuntimeError(f"C-FIND answered 0x{status.Status:04X}")
        total = time.perf_counter() - started
    finally:
        assoc.release()
    return first, total, count


def measure(client: str, port: int, pid: int, level: str, expected: int) -> Run:
    ds = query(level)
    s0, c0 = cpu_sample(pid), time.process_time()
    if client == "aiodimse":
        first, total, count = asyncio.run(_aiodimse_find(port, ds))
    else:
        first, total, count = _pynetdicom_find(port, ds)
    s1, c1 = cpu_sample(pid), time.process_time()
    if count != expected:
        raise RuntimeError(f"{count} matches, {expected} expected")
    return Run(first, total, count, cpu_between(s0, s1), c1 - c0)


# -- running and reporting -----------------------------------------------------------

@dataclass
class Cell:
    runs: list[Run] = field(default_factory=list)
    na: str = ""

    def median(self, key: str) -> float:
        return statistics.median(getattr(r, key) for r in self.runs) if self.runs \
            else float("nan")


def _ratio(a: float, b: float) -> str:
    return "-" if math.isnan(a) or math.isnan(b) or b <= 0 else f"{a / b:.2f}x"


def table(cells: dict[tuple[str, str, str], Cell], clients: list[str], n: int) -> list[str]:
    lines: list[str] = []
    for level in LEVELS:
        lines += [f"### {level} level, {n:,} matches", "",
                  "| server | client | first ms | all ms | matches/s | x aiodimse handler"
                  " | x pynetdicom handler | server CPU us/match | client CPU us/match |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for client in clients:
            rate = {s: n / cells[(s, client, level)].median("total") for s in SERVERS
                    if cells[(s, client, level)].runs}
            for name in SERVERS:
                cell = cells[(name, client, level)]
                if not cell.runs:
                    lines.append(f"| {name} | {client} | n/a ({cell.na or 'no run'}) "
                                 "| | | | | | |")
                    continue
                r = rate[name]
                lines.append(
                    f"| {name} | {client} | {1000 * cell.median('first'):.1f}"
                    f" | {1000 * cell.median('total'):,.0f} | {r:,.0f}"
                    f" | {_ratio(r, rate.get(CEILING, float('nan')))}"
                    f" | {_ratio(r, rate.get(PYN, float('nan')))}"
                    f" | {1e6 * cell.median('server_cpu') / n:.0f}"
                    f" | {1e6 * cell.median('client_cpu') / n:.0f} |")
        lines.append("")
    return lines


_CALLGRIND = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
# as benchmarks/icount.py: the same dict layouts each run, no OpenBLAS spinning threads
_ICOUNT_ENV = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}


def icount(bench: Bench, name: str, level: str) -> float:
    """Server instructions a match, under callgrind: a run with one query and a run
    with three (the same level), the difference over 2n matches."""
    totals, n = [], bench.n
    for queries in (1, 3):
        port = _free_port()
        log = bench.work / f"icount-{name.replace(' ', '-')}-{queries}.log"
        cmd = _CALLGRIND + _command(name, bench, port)
        with _server(name, cmd, port, log, env=_ICOUNT_ENV, ready=1200) as pid:
            for _ in range(queries):
                measure("aiodimse", port, pid, level, n)
        found = _COLLECTED.findall(log.read_text(errors="replace"))
        if not found:
            raise RuntimeError(f"no instruction count from valgrind in {log}")
        totals.append(int(found[-1]))
    return (totals[1] - totals[0]) / (2 * n)


def _prepare(data: Path, work: Path, n: int) -> Path:
    """The index in ``data`` and the answers' pickle (its path)."""
    answers = asyncio.run(_build(data, n))
    for level in LEVELS:
        if len(answers[level]) != n:
            raise SystemExit(f"the index answers {len(answers[level])} at {level}, not {n}")
    pickled = work / "answers.pickle"
    pickled.write_bytes(pickle.dumps(answers))
    return pickled


def _rounds(bench: Bench, servers: list[str], clients: list[str], rounds: int,
            cpus: set[int] | None) -> dict[tuple[str, str, str], Cell]:
    n = bench.n
    cells = {(s, c, lv): Cell() for s in SERVERS for c in clients for lv in LEVELS}
    for rnd in range(rounds):
        for name in servers:  # each server once a round, all levels and clients
            port = _free_port()
            log = bench.work / f"{name.replace(' ', '-')}.log"
            try:
                with _server(name, _command(name, bench, port), port, log,
                             cpus=cpus) as pid:
                    measure("aiodimse", port, pid, "IMAGE", n)  # warm-up, not counted
                    for level in LEVELS:
                        for client in clients:
                            run = measure(client, port, pid, level, n)
                            cells[(name, client, level)].runs.append(run)
                            print(f"round {rnd + 1} {level:5} {name:18} <- {client:10}"
                                  f" first {1000 * run.first:7.1f} ms  all"
                                  f" {1000 * run.total:7.0f} ms  {n / run.total:8,.0f}/s",
                                  flush=True)
            except (NotAvailable, RuntimeError, OSError) as exc:
                for key, cell in cells.items():
                    if key[0] == name and not cell.runs:
                        cell.na = str(exc)[:120]
                print(f"round {rnd + 1} {name}: failed: {exc}", flush=True)
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--matches", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (--quick: 1)")
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--clients", default="aiodimse,pynetdicom")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the aiodimse servers' event loop (default asyncio)")
    parser.add_argument("--icount", choices=LEVELS, default=None,
                        help="instructions a match at this level instead (valgrind; "
                             "aiodimse servers; try --matches 2000)")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--md", type=Path, default=RESULTS / "cfind_many.md")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    clients = [c for c in args.clients.split(",") if c]
    servers = [s for s in args.servers.split(",") if s]
    if bad := [s for s in servers if s not in SERVERS] + [
            c for c in clients if c not in ("aiodimse", "pynetdicom")]:
        parser.error(f"unknown contender(s): {', '.join(bad)}")
    two = cpu_count() >= 2 and not args.no_pin and not args.icount
    server_cpus, client_cpus = ({0}, {1}) if two else (None, None)
    if client_cpus:
        pin(os.getpid(), client_cpus)
    n = args.matches
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cfind-many-") as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        t0 = time.perf_counter()
        bench = Bench(data, _prepare(data, work, n), work, n, args.loop)
        print(f"index of {2 * n:,} instances built in {time.perf_counter() - t0:.1f} s",
              flush=True)
        if args.icount:
            for name in (s for s in servers if s != PYN):
                count = icount(bench, name, args.icount)
                print(f"{name:18} {args.icount:5} {count:12,.0f} instructions a match",
                      flush=True)
            return 0
        cells = _rounds(bench, servers, clients, rounds, server_cpus)
    wall = time.monotonic() - started
    cmd = "python3 benchmarks/cfind_many.py " + " ".join(sys.argv[1:] if argv is None else argv)
    head = [
        f"# C-FIND of {n:,} matches: latest run", "",
        f"Command: `{cmd.strip()}` ({wall:.0f} s),"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; medians of {rounds}"
        f" round(s); aiodimse servers on {args.loop}; servers pinned to CPU 0 and clients"
        f" to CPU 1{'' if two else ' (not pinned)'}. Read the ratios, not the absolute"
        " rates (shared machine). The handlers send pre-built answers (module doc of"
        " benchmarks/cfind_many.py): `aiodimse serve` also finds and builds each one.", ""]
    md = "\n".join(head + table(cells, clients, n))
    print()
    print(md)
    args.md.parent.mkdir(parents=True, exist_ok=True)
    args.md.write_text(md)
    args.md.with_suffix(".json").write_text(json.dumps({
        "command": cmd, "matches": n, "rounds": rounds, "loop": args.loop,
        "wall_seconds": wall,
        "cells": [{"server": s, "client": c, "level": lv, "na": cell.na,
                   "runs": [vars(r) for r in cell.runs]}
                  for (s, c, lv), cell in cells.items()]}, indent=1))
    print(f"written: {args.md} {args.md.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

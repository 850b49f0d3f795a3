"""The benchmark suite: every contender side by side, ratios back to back.

    python3 benchmarks/run.py [--quick] [--only ROW] [--json out.json] [--no-pin]

Rows (``--only`` takes a row or a prefix: ``1``, ``1c``, ``5``...):
  1  one association, sequential N-ACTION (1 / 10 / 1000 referenced instances); C-ECHO
  2  the same with a handler that reads every referenced instance
  3  associate + release per second
  4  10 associations, asynchronous operations window 8
  5  100 and 1000 concurrent associations x 20 N-ACTIONs
  6  10,000 idle associations: established, RSS each, idle CPU, still answering C-ECHO
  7  SCU side: aiodimse's and pynetdicom's SCU against the ceiling, vs the raw generator
  8  handlers that answer with a reply data set (benchmarks/replies.py): N-ACTION with
     the same / a new Action Reply, N-GET of 20 attributes, N-CREATE; 1, 10 and 100
     associations; each beside the same server whose handler sends no reply

Servers run pinned to CPU 0 and the load on CPU 1 (when there are two). Each row
reports the median of its runs. Targets are printed, never enforced. Results go to
benchmarks/results/latest.md and a JSON file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import math
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python3 benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import pdus
from benchmarks.load import LoadResult, LoadSpec, measure, percentile
from benchmarks.procs import (
    REPO,
    LineReader,
    NotAvailable,
    ServerProcess,
    cpu_between,
    cpu_count,
    pin,
    raise_nofile,
    server,
    stop_process,
)

RESULTS = REPO / "benchmarks" / "results"
PYN_REF = "pynetdicom+nodelay"
# pynetdicom's set-up cap in rows 5 and 6, seconds: it never establishes them all, so
# each of its runs lasts the cap (and reaches a few hundred at most whatever the cap)
PYN_SETUP_CAP = 15.0


@dataclass(frozen=True)
class Contender:
    name: str
    module: str
    args: tuple[str, ...] = ()
    ceiling: str = "ceiling"  # the ceiling of the same event loop
    floor: bool = False  # raw TCP ping-pong instead of DICOM
    client: bool = False  # row 7: an SCU script instead of a server

    @property
    def is_pynetdicom(self) -> bool:
        """pynetdicom's server or SCU: the reference, with fewer runs and shorter caps."""
        return self.name.startswith("pynetdicom")


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


CEILING = Contender("ceiling", "benchmarks.servers.ceiling", ("--loop", "asyncio"))
CEILING_UV = Contender(
    "ceiling-uvloop", "benchmarks.servers.ceiling", ("--loop", "uvloop"), ceiling="ceiling-uvloop"
)
FLOOR = Contender(
    "floor (tcp ping-pong)", "benchmarks.servers.pingpong", ("--loop", "asyncio"), floor=True
)
PYN = Contender("pynetdicom", "benchmarks.servers.pynetdicom_scp")
PYN_ND = Contender(PYN_REF, "benchmarks.servers.pynetdicom_scp", ("--nodelay",))
AIO = Contender("aiodimse", "benchmarks.servers.aiodimse_scp", ("--loop", "asyncio"))
AIO_UV = Contender(
    "aiodimse-uvloop",
    "benchmarks.servers.aiodimse_scp",
    ("--loop", "uvloop"),
    ceiling="ceiling-uvloop",
)


NO_REPLY = " no reply"


def judged(c: Contender) -> bool:
    """An aiodimse contender the row's target is judged for (not a row 8 baseline)."""
    return c.name.startswith("aiodimse") and not c.name.endswith(NO_REPLY)


def reply_contenders(mode: str, baseline: str) -> list[Contender]:
    """Row 8: the ceilings and pynetdicom answering with the reply, aiodimse with
    ``--replies mode`` and, as "<name> no reply", with ``--replies baseline``."""
    uv = _has_uvloop()
    out = [replace(c, args=(*c.args, "--replies")) for c in [CEILING, CEILING_UV][: 1 + uv]]
    out.append(replace(PYN_ND, args=(*PYN_ND.args, "--replies", "new")))
    for c in [AIO, AIO_UV][: 1 + uv]:
        out.append(replace(c, args=(*c.args, "--replies", mode)))
        out.append(replace(c, name=c.name + NO_REPLY, args=(*c.args, "--replies", baseline)))
    return out


def _read_all(c: Contender) -> Contender:
    return replace(c, name=c.name + " read-all", args=(*c.args, "--read-all"))


def server_contenders(*, floor: bool, read_all: bool = False) -> list[Contender]:
    uv = _has_uvloop()
    out = [CEILING] + ([CEILING_UV] if uv else [])
    if floor:
        out.append(FLOOR)
    dicom = [PYN, PYN_ND, AIO] + ([AIO_UV] if uv else [])
    out += [_read_all(c) for c in dicom] if read_all else dicom
    return out


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    group: str  # rows of a group share their servers
    spec: LoadSpec
    contenders: list[Contender]
    isolated: bool = False  # one contender at a time, fresh server per run
    runs: int = 3
    procs: int = 1
    idle_seconds: float = 0.0
    ref: str = PYN_REF  # the pynetdicom column's reference
    pyn_runs: int | None = None  # fewer runs for the (slow) pynetdicom
    # pynetdicom's own caps where it never finishes (rows 5, 6): set-up seconds and
    # request-phase seconds, so that its three runs fit the full run's half hour
    pyn_caps: tuple[float, float] | None = None
    note: str = ""
    target: str = ""

    def runs_of(self, contender: Contender) -> int:
        """How many runs this row gives ``contender``."""
        if self.pyn_runs is not None and contender.is_pynetdicom:
            return self.pyn_runs
        return self.runs

    def spec_of(self, contender: Contender) -> LoadSpec:
        """The load ``contender`` gets in this row (pynetdicom's shorter caps applied)."""
        if self.pyn_caps is None or not contender.is_pynetdicom:
            return self.spec
        setup, duration = self.pyn_caps
        return replace(self.spec, setup_timeout=min(self.spec.setup_timeout, setup),
                       duration=min(self.spec.duration, duration))


@dataclass
class Outcome:
    row: str
    contender: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    na: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


def build_rows(quick: bool) -> list[Row]:
    dur = 0.5 if quick else 3.0
    runs = 1 if quick else 3  # the README's promise: quick is one run a row
    # One association's sequential round trips (rows 1 and 7) swing most with the shared
    # machine's moods, and a run takes seconds: five runs each (pynetdicom, tens of
    # times slower and only a reference, three). Row 7 has three such contenders where
    # row 1 has five: seven runs each there cost about what row 1's five do.
    seq_runs = 1 if quick else 5
    scu_runs = 1 if quick else 7
    pyn_seq_runs = 1 if quick else 3
    # rows 5 and 6: pynetdicom never establishes them all, so each of its runs lasts
    # its caps, which are shorter for it (and said in the rows' notes)
    pyn_caps = None if quick else (PYN_SETUP_CAP, 10.0)
    pyn_capped = "" if quick else f" (pynetdicom's set-up capped at {PYN_SETUP_CAP:.0f} s)"
    big = 10_000
    base = LoadSpec(duration=dur, op_timeout=10.0, setup_timeout=20.0)
    rows: list[Row] = []

    def heavy(cs: list[Contender]) -> list[Contender]:
        # Quick mode keeps only pynetdicom's fair best (TCP_NODELAY) outside rows 1a,
        # 3 and 4, to stay within its time budget.
        return [c for c in cs if not (quick and c.name in (PYN.name, PYN.name + " read-all"))]

    for sub, refs in (("a", 1), ("b", 10), ("c", 1000)):
        rows.append(
            Row(
                f"1{sub}",
                f"1 association, sequential N-ACTION, {refs} referenced instance(s)",
                "1",
                replace(base, n_refs=refs),
                server_contenders(floor=True)
                if refs == 1
                else heavy(server_contenders(floor=True)),
                runs=seq_runs,
                pyn_runs=pyn_seq_runs,
                target="server >= 0.7x ceiling",
            )
        )
    rows.append(
        Row(
            "1d",
            "1 association, sequential C-ECHO",
            "1",
            replace(base, op="echo"),
            heavy(server_contenders(floor=True)),
            runs=seq_runs,
            pyn_runs=pyn_seq_runs,
            target="server >= 0.7x ceiling",
        )
    )
    for sub, refs in (("a", 1), ("b", 10), ("c", 1000)):
        rows.append(
            Row(
                f"2{sub}",
                f"handler reads every referenced instance, {refs} instance(s)",
                "2",
                replace(base, n_refs=refs),
                heavy(server_contenders(floor=False, read_all=True)),
                runs=runs,
                ref=PYN_REF + " read-all",
                target=">= 10x pynetdicom with the same handler (at 1000)" if refs == 1000 else "",
            )
        )
    rows.append(
        Row(
            "3",
            "associate + release, 1 lane",
            "3",
            replace(base, mode="assoc"),
            server_contenders(floor=False),
            runs=runs,
            target="server >= 0.7x ceiling",
        )
    )
    rows.append(
        Row(
            "4",
            "10 associations, async ops window 8 proposed",
            "4",
            replace(base, n_assoc=10, window=8, propose_window=8),
            server_contenders(floor=True),
            runs=runs,
            note="window = what the acceptor granted (pynetdicom grants 1: no async ops)",
            target="server >= 0.7x ceiling",
        )
    )
    for sub, n in (("a", 100), ("b", 1000)):
        rows.append(
            Row(
                f"5{sub}",
                f"{n} concurrent associations x 20 N-ACTIONs",
                f"5{sub}",
                replace(
                    base,
                    n_assoc=n,
                    per_assoc=20,
                    duration=5.0 if quick else 20.0,
                    setup_timeout=10.0 if quick else 40.0,
                ),
                heavy(server_contenders(floor=True)),
                isolated=True,
                # 100 x 20 requests take tens of milliseconds: three such runs leave
                # the median to chance, so row 5a takes three times as many (quick
                # mode: once, as every row)
                runs=runs * 3 if n == 100 and not quick else runs,
                pyn_runs=runs,  # three, not nine: each of its runs lasts its caps
                pyn_caps=pyn_caps,
                note="rate over the request phase (set-up excluded); time-capped" + pyn_capped,
                target="server >= 0.7x ceiling; CPU/op <= 2x ceiling's",
            )
        )
    rows.append(
        Row(
            "6",
            f"{big} idle associations, then one C-ECHO on each",
            "6",
            replace(
                base,
                mode="idle",
                n_assoc=big,
                duration=10.0,
                setup_timeout=12.0 if quick else 45.0,
                keep_latencies=False,
                connect_concurrency=256,
            ),
            heavy(server_contenders(floor=False)),
            isolated=True,
            runs=runs,
            pyn_caps=pyn_caps,
            procs=2,
            idle_seconds=3.0,
            note="set-up time-capped" + pyn_capped
            + "; pynetdicom is expected to fail beyond a few hundred",
            target=f"all {big} established + answering, < 10 kB RSS each, ~0 idle CPU",
        )
    )
    scu = [
        Contender("raw generator", "benchmarks.load", client=True),
        Contender("pynetdicom SCU", "benchmarks.clients.pynetdicom_scu", client=True),
        Contender(
            "aiodimse SCU", "benchmarks.clients.aiodimse_scu", ("--loop", "asyncio"), client=True
        ),
    ]
    if _has_uvloop():
        scu.append(
            Contender(
                "aiodimse SCU uvloop",
                "benchmarks.clients.aiodimse_scu",
                ("--loop", "uvloop"),
                client=True,
            )
        )
    for sub, op in (("a", "naction"), ("b", "echo")):
        rows.append(
            Row(
                f"7{sub}",
                "SCU side, 1 association, sequential "
                + ("N-ACTION (1 instance)" if op == "naction" else "C-ECHO")
                + " against the ceiling",
                "7",
                replace(base, op=op),
                scu,
                runs=scu_runs,
                pyn_runs=pyn_seq_runs,
                ref="pynetdicom SCU",
                target="aiodimse SCU >= 0.5x raw generator",
            )
        )
    rows += reply_rows(base, quick, pyn_caps, pyn_capped)
    return rows


# Row 8: (letters, what, op, --replies of the reply contenders, of the baseline)
REPLY_ROWS = (
    ("abc", "N-ACTION, the same Action Reply object each time", "naction", "same", "none"),
    ("def", "N-ACTION, a new Action Reply per request", "naction", "new", "dropped"),
    ("ghi", "N-GET of 20 attributes of a stored MPPS instance", "nget", "new", "dropped"),
    ("jkl", "N-CREATE returning the created attributes", "ncreate", "new", "dropped"),
)
REPLY_CPU_TARGET = 1.3  # server CPU/op with the reply over the same server's without
NGET_RATE_TARGET = 0.6  # N-GET rows: rate over the ceiling's


def reply_rows(base: LoadSpec, quick: bool, pyn_caps: tuple[float, float] | None,
               pyn_capped: str) -> list[Row]:
    """Row 8: 8a-8c, 8d-8f, 8g-8i, 8j-8l, each at 1, 10 and 100 associations."""
    runs = 1 if quick else 3
    rows: list[Row] = []
    for letters, what, op, mode, baseline in REPLY_ROWS:
        contenders = reply_contenders(mode, baseline)
        without = ("its handler returns (0x0000, None)" if baseline == "none" else
                   "its handler does the same work and returns (0x0000, None)")
        note = f"'no reply': the same server, {without}"
        target = f"server CPU/op <= {REPLY_CPU_TARGET}x the same server's without the reply"
        if op == "nget":
            target += f"; rate >= {NGET_RATE_TARGET}x ceiling"
        for sub, (n, title) in zip(letters, ((1, "1 association, sequential"),
                                             (10, "10 associations, window 8"),
                                             (100, "100 associations x 20")), strict=True):
            many = n == 100
            spec = replace(base, op=op, n_assoc=n)
            if n == 10:
                spec = replace(spec, window=8, propose_window=8)
            if many:
                spec = replace(spec, per_assoc=20, duration=5.0 if quick else 20.0,
                               setup_timeout=10.0 if quick else 40.0)
            rows.append(Row(
                f"8{sub}", f"{title}: {what}",
                f"8{sub}" if many else f"8{letters[0]}", spec, contenders,
                isolated=many, runs=runs * 2 if many and not quick else runs,
                pyn_runs=runs, pyn_caps=pyn_caps if many else None,
                note=note + ("; rate over the request phase" + pyn_capped if many else ""),
                target=target,
            ))
    return rows


# ---------------------------------------------------------------------------------
# running


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        two = cpu_count() >= 2 and not args.no_pin
        self.server_cpus: set[int] | None = {0} if two else None
        self.gen_cpus: set[int] | None = {1} if two else None
        self.outcomes: dict[tuple[str, str], Outcome] = {}

    def outcome(self, row: Row, c: Contender) -> Outcome:
        return self.outcomes.setdefault((row.id, c.name), Outcome(row.id, c.name))

    def log(self, msg: str) -> None:
        print(msg, flush=True)

    @contextlib.contextmanager
    def start(self, c: Contender) -> Iterator[ServerProcess]:
        with server(c.name.replace(" ", "_"), c.module, list(c.args), cpus=self.server_cpus) as sp:
            yield sp

    def spec_for(self, row: Row, c: Contender, port: int) -> LoadSpec:
        spec = replace(row.spec_of(c), port=port)
        if c.floor:
            req = pdus.c_echo_rq() if spec.op == "echo" else pdus.n_action_rq(spec.n_refs)
            rsp = pdus.c_echo_rsp() if spec.op == "echo" else pdus.n_action_rsp()
            spec = replace(spec, mode="ping", ping_req=len(req), ping_rsp=len(rsp))
        return spec

    def one_run(self, row: Row, c: Contender, sp: ServerProcess) -> None:
        out = self.outcome(row, c)
        if out.na:
            return
        try:
            res = measure(
                self.spec_for(row, c, sp.port),
                server_pid=sp.pid,
                procs=row.procs,
                cpus=self.gen_cpus,
                idle_seconds=row.idle_seconds,
            )
        except (TimeoutError, EOFError, NotAvailable, OSError, ValueError) as exc:
            out.na = f"load failed: {exc!r}"
            self.log(f"  {row.id} {c.name}: n/a ({out.na})")
            return
        res.extra["server_threads"] = sp.threads()
        res.extra["server_alive"] = sp.alive()
        out.runs.append(res.as_dict())
        self.log(
            f"  {row.id} {c.name:32s} {res.rate:10.1f}/s ok={res.ok} fail={res.failures}"
            f" p50={res.p50_ms:.3f}ms srv={res.server_cpu_us_per_op:.0f}us/op"
            f" gen={res.gen_cpu_pct:.0f}% est={res.established} win={res.window}"
        )

    def run_group(self, rows: list[Row]) -> None:
        first = rows[0]
        if first.contenders[0].client:
            self.run_clients(rows)
        elif first.isolated:
            # A fresh server per run, the contenders taking turns run by run: a slow
            # spell of the shared machine then hits each of them, as in the other rows.
            for row in rows:
                for i in range(row.runs):
                    for c in row.contenders:
                        if i < row.runs_of(c):
                            self._isolated_run(row, c)
        else:
            with contextlib.ExitStack() as stack:
                live: list[tuple[Contender, ServerProcess]] = []
                for c in first.contenders:
                    try:
                        live.append((c, stack.enter_context(self.start(c))))
                    except NotAvailable as exc:
                        for row in rows:
                            self.outcome(row, c).na = str(exc)
                        self.log(f"  {c.name}: n/a ({exc})")
                for row in rows:
                    for i in range(row.runs):  # interleaved: ratios measured back to back
                        for c, sp in live:
                            if c in row.contenders and i < row.runs_of(c):
                                self.one_run(row, c, sp)

    def _isolated_run(self, row: Row, c: Contender) -> None:
        out = self.outcome(row, c)
        if out.na:
            return
        try:
            with self.start(c) as sp:
                self.one_run(row, c, sp)
        except NotAvailable as exc:
            out.na = str(exc)
            self.log(f"  {row.id} {c.name}: n/a ({exc})")

    def run_clients(self, rows: list[Row]) -> None:
        try:
            with self.start(CEILING) as sp:
                for row in rows:
                    for i in range(row.runs):
                        for c in row.contenders:
                            if i >= row.runs_of(c):
                                continue
                            if c.module == "benchmarks.load":
                                self.one_run(row, c, sp)
                            else:
                                self.client_run(row, c, sp)
        except NotAvailable as exc:
            for row in rows:
                for c in row.contenders:
                    self.outcome(row, c).na = f"ceiling: {exc}"

    def client_run(self, row: Row, c: Contender, sp: ServerProcess) -> None:
        out = self.outcome(row, c)
        if out.na:
            return
        spec = row.spec
        cmd = [
            sys.executable,
            "-m",
            c.module,
            "--port",
            str(sp.port),
            "--op",
            spec.op,
            "--refs",
            str(spec.n_refs),
            "--duration",
            str(spec.duration),
            *c.args,
        ]
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            pin(proc.pid, self.gen_cpus)
            assert proc.stdout is not None
            reader = LineReader(proc.stdout)
            reader.expect("READY", time.monotonic() + 30)
            s0, w0 = sp.cpu(), time.monotonic()
            done = json.loads(reader.expect("DONE", time.monotonic() + spec.duration + 30))
            s1, w1 = sp.cpu(), time.monotonic()
        except NotAvailable as exc:
            out.na = str(exc)
            self.log(f"  {row.id} {c.name}: n/a ({exc})")
            return
        except (TimeoutError, EOFError, ValueError) as exc:
            err = ""
            if proc.poll() is not None and proc.stderr is not None:
                err = proc.stderr.read()[-300:].strip().replace("\n", " | ")
            out.na = f"client failed: {exc!r} {err}"
            self.log(f"  {row.id} {c.name}: n/a ({out.na})")
            return
        finally:
            stop_process(proc)
            if proc.stderr is not None:
                proc.stderr.close()
        res = LoadResult(ok=done["ok"], failures=done["failures"], errors=done["errors"])
        res.elapsed = max(done["t1"] - done["t0"], 1e-9)
        res.rate = res.ok / res.elapsed
        res.gen_cpu_pct = 100 * done["cpu"] / res.elapsed
        lat = sorted(done["lat_us"])
        res.p50_ms, res.p99_ms = percentile(lat, 0.5) / 1000, percentile(lat, 0.99) / 1000
        used = cpu_between(s0, s1)
        res.server_cpu_us_per_op = 1e6 * used / max(res.ok, 1)
        res.server_cpu_pct = 100 * used / max(w1 - w0, 1e-9)
        res.server_hwm_kb = sp.hwm_kb()
        out.runs.append(res.as_dict())
        self.log(
            f"  {row.id} {c.name:32s} {res.rate:10.1f}/s ok={res.ok} fail={res.failures}"
            f" p50={res.p50_ms:.3f}ms client-cpu={res.gen_cpu_pct:.0f}%"
        )


# ---------------------------------------------------------------------------------
# summarising


def _median(runs: list[dict[str, Any]], key: str) -> float:
    vals = [float(r[key]) for r in runs if r.get(key) is not None and not math.isnan(float(r[key]))]
    return statistics.median(vals) if vals else float("nan")


def summarise(row: Row, out: Outcome) -> dict[str, Any]:
    runs = out.runs
    s: dict[str, Any] = {"runs": len(runs)}
    if not runs:
        return s
    for key in (
        "rate",
        "p50_ms",
        "p99_ms",
        "server_cpu_us_per_op",
        "gen_cpu_pct",
        "server_cpu_pct",
        "idle_cpu_pct",
    ):
        s[key] = _median(runs, key)
    s["failures"] = sum(int(r["failures"]) for r in runs)
    s["ok"] = sum(int(r["ok"]) for r in runs)
    s["window"] = min(int(r["window"]) for r in runs)
    s["hwm_mb"] = max(int(r["server_hwm_kb"]) for r in runs) / 1024
    s["errors"] = sorted({e for r in runs for e in r["errors"]})[:3]
    if row.spec.mode == "idle":
        s["established"] = statistics.median(int(r["established"]) for r in runs)
        s["answering"] = statistics.median(int(r["ok"]) for r in runs)
        per = [
            (r["server_rss_established_kb"] - r["server_rss_before_kb"]) / r["established"]
            for r in runs
            if r["established"] > 0 and r["server_rss_established_kb"] > 0
        ]
        s["kb_per_assoc"] = statistics.median(per) if per else float("nan")
        s["threads"] = max(int(r["extra"].get("server_threads", -1)) for r in runs)
    return s


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:,.{digits}f}"
    return str(v)


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b <= 0:
        return "-"
    return f"{a / b:.2f}x"


def row_table(row: Row, outcomes: dict[tuple[str, str], Outcome]) -> list[str]:
    lines = [f"### Row {row.id}: {row.title}", ""]
    if row.note:
        lines += [f"_{row.note}_", ""]
    summ = {
        c.name: outcomes[(row.id, c.name)].summary
        for c in row.contenders
        if (row.id, c.name) in outcomes
    }
    ref = summ.get(row.ref, {}).get("rate")
    if row.spec.mode == "idle":
        lines += [
            "| contender | established | answering C-ECHO | RSS/assoc kB | idle CPU % | threads"
            " | peak RSS MB | failures |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in row.contenders:
            o = outcomes.get((row.id, c.name))
            if o is None:
                continue
            s = o.summary
            if o.na or not s.get("runs"):
                lines.append(f"| {c.name} | n/a ({o.na or 'no run'}) | | | | | | |")
                continue
            lines.append(
                f"| {c.name} | {_fmt(s['established'], 0)} / {row.spec.n_assoc}"
                f" | {_fmt(s['answering'], 0)}"
                f" | {_fmt(s['kb_per_assoc'])} | {_fmt(s['idle_cpu_pct'])} | {s['threads']}"
                f" | {_fmt(s['hwm_mb'])} | {s['failures']} |"
            )
    else:
        first = "raw generator" if row.contenders[0].client else "ceiling"
        lines += [
            f"| contender | rate/s | x {first} | x {row.ref} | p50 ms | p99 ms | failures"
            " | server CPU us/op | server peak RSS MB | load CPU % | window |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in row.contenders:
            o = outcomes.get((row.id, c.name))
            if o is None:
                continue
            s = o.summary
            if o.na or not s.get("runs"):
                lines.append(f"| {c.name} | n/a ({o.na or 'no run'}) | | | | | | | | | |")
                continue
            base_name = first if c.client else c.ceiling
            base = summ.get(base_name, {}).get("rate")
            # The load generator near a full core: the rate is a lower bound.
            bound = " (load-bound)" if s["gen_cpu_pct"] >= 90 else ""
            lines.append(
                f"| {c.name} | {_fmt(s['rate'])}{bound} | {_ratio(s['rate'], base)}"
                f" | {_ratio(s['rate'], ref)}"
                f" | {_fmt(s['p50_ms'], 3)} | {_fmt(s['p99_ms'], 3)} | {s['failures']}"
                f" | {_fmt(s['server_cpu_us_per_op'], 0)} | {_fmt(s['hwm_mb'])}"
                f" | {_fmt(s['gen_cpu_pct'], 0)} | {s['window']} |"
            )
    if row.target:
        verdicts = target_verdicts(row, outcomes)
        lines += [
            "",
            f"Target: {row.target}." + (" " + "; ".join(verdicts) + "." if verdicts else ""),
        ]
    errs = [
        f"{c.name}: {'; '.join(outcomes[(row.id, c.name)].summary.get('errors', []))}"
        for c in row.contenders
        if (row.id, c.name) in outcomes and outcomes[(row.id, c.name)].summary.get("errors")
    ]
    if errs:
        lines += ["", "Errors seen: " + " / ".join(errs)]
    return [*lines, ""]


def _ok(flag: bool) -> str:
    return "met" if flag else "MISSED"


def target_verdicts(row: Row, outcomes: dict[tuple[str, str], Outcome]) -> list[str]:
    """Each aiodimse contender against the row's target (reported, never enforced)."""
    summ = {
        c.name: outcomes[(row.id, c.name)].summary
        for c in row.contenders
        if (row.id, c.name) in outcomes
    }
    out: list[str] = []
    for c in row.contenders:
        s = summ.get(c.name, {})
        if not judged(c) or not s.get("runs"):
            continue
        if row.id.startswith("8"):
            out.append(_reply_verdict(row, c, s, summ))
        elif row.spec.mode == "idle":
            n = row.spec.n_assoc
            good = (
                s["established"] == n
                and s["answering"] == n
                and s["kb_per_assoc"] < 10
                and s["idle_cpu_pct"] < 1.0
            )
            out.append(
                f"{c.name}: {_fmt(s['established'], 0)} up, {_fmt(s['answering'], 0)} answering,"
                f" {_fmt(s['kb_per_assoc'])} kB each,"
                f" idle CPU {_fmt(s['idle_cpu_pct'])}% -> {_ok(good)}"
            )
        elif c.client:
            base = summ.get("raw generator", {}).get("rate", float("nan"))
            r = s["rate"] / base if base and base > 0 else float("nan")
            out.append(f"{c.name} {r:.2f}x -> {_ok(r >= 0.5)}")
        elif row.id.startswith("2"):
            if row.spec.n_refs < 1000:
                continue
            base = summ.get(row.ref, {}).get("rate", float("nan"))
            r = s["rate"] / base if base and base > 0 else float("nan")
            out.append(f"{c.name} {r:.1f}x pynetdicom -> {_ok(r >= 10)}")
        else:
            ceil = summ.get(c.ceiling, {})
            base = ceil.get("rate", float("nan"))
            r = s["rate"] / base if base and base > 0 else float("nan")
            text = f"{c.name} {r:.2f}x -> {_ok(r >= 0.7)}"
            if row.id.startswith("5"):
                cpu = s["server_cpu_us_per_op"] / ceil.get("server_cpu_us_per_op", float("nan"))
                text += f", CPU/op {cpu:.1f}x ceiling's -> {_ok(cpu <= 2)}"
            out.append(text)
    return out


def _reply_verdict(row: Row, c: Contender, s: dict[str, Any],
                   summ: dict[str, dict[str, Any]]) -> str:
    """Row 8: CPU/op against the same server without the reply (and N-GET's rate)."""
    plain = summ.get(c.name + NO_REPLY, {}).get("server_cpu_us_per_op", float("nan"))
    cpu = s["server_cpu_us_per_op"] / plain if plain and plain > 0 else float("nan")
    good = cpu <= REPLY_CPU_TARGET
    text = f"{c.name} CPU/op {cpu:.2f}x without the reply"
    if row.spec.op == "nget":
        base = summ.get(c.ceiling, {}).get("rate", float("nan"))
        r = s["rate"] / base if base and base > 0 else float("nan")
        good = good and r >= NGET_RATE_TARGET
        text += f", {r:.2f}x ceiling"
    return f"{text} -> {_ok(good)}"


def machine_info() -> dict[str, str]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def ver(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": str(cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pydicom": ver("pydicom"),
        "pynetdicom": ver("pynetdicom"),
        "aiodimse": ver("aiodimse"),
        "uvloop": ver("uvloop"),
        "commit": commit,
    }


def render(rows: list[Row], runner: Runner, info: dict[str, str], cmd: str, wall: float) -> str:
    pinning = (
        f"servers on CPU {sorted(runner.server_cpus)}, load on CPU {sorted(runner.gen_cpus)}"
        if runner.server_cpus and runner.gen_cpus
        else "not pinned"
    )
    lines = [
        "# aiodimse benchmarks: latest run",
        "",
        f"Command: `{cmd}` ({wall:.0f} s). Machine: {info['cpu']}, {info['cores']} cores, "
        f"Linux {info['kernel']}; Python {info['python']}, pydicom {info['pydicom']}, "
        f"pynetdicom {info['pynetdicom']}, aiodimse {info['aiodimse']} ({info['commit']}), "
        f"uvloop {info['uvloop']}; {info['date']}; {pinning}.",
        "",
        "Each rate is the median of the row's runs; contenders run back to back in the same "
        "invocation, so read the ratios, not the absolute rates (shared, noisy machine). "
        "`x ceiling` compares with the raw responder on the same event loop; "
        f"`x {PYN_REF}` with pynetdicom given TCP_NODELAY (its fair best). "
        "Server CPU is the server's run time over the measured phase, from its threads' "
        "schedstat (ns; the clock-tick count where threads ended meanwhile). "
        "Load CPU is the generator's, in % of one core; at 90 % or more the rate is marked"
        " load-bound (a lower bound of what the server could do).",
        "",
    ]
    for row in rows:
        lines += row_table(row, runner.outcomes)
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs (< 5 minutes)")
    parser.add_argument("--only", action="append", help="row id or prefix (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="JSON output path")
    parser.add_argument("--md", type=Path, default=RESULTS / "latest.md", help="markdown output")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPUs")
    args = parser.parse_args(argv)
    # A SIGTERM stops the run as Ctrl-C does: the servers and load workers are
    # stopped on the way out (their `finally`) and what was measured is written.
    signal.signal(signal.SIGTERM, _interrupt)
    raise_nofile()
    all_rows = build_rows(args.quick)
    rows = [r for r in all_rows if not args.only or any(r.id.startswith(o) for o in args.only)]
    if not rows:
        parser.error(f"no row matches {args.only}")
    runner = Runner(args)
    info = machine_info()
    started = time.monotonic()
    cmd = "python3 benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    interrupted = False
    try:
        for gid, grows in groups.items():
            runner.log(f"== group {gid}: {', '.join(r.id for r in grows)}")
            group_started = time.monotonic()
            runner.run_group(grows)
            runner.log(f"   group {gid} took {time.monotonic() - group_started:.0f} s")
    except KeyboardInterrupt:
        interrupted = True
        runner.log("interrupted: writing what was measured")
    for row in rows:
        for c in row.contenders:
            if (row.id, c.name) in runner.outcomes:
                o = runner.outcomes[(row.id, c.name)]
                o.summary = summarise(row, o)
    wall = time.monotonic() - started
    md = render(rows, runner, info, cmd.strip(), wall)
    args.md.parent.mkdir(parents=True, exist_ok=True)
    args.md.write_text(md)
    json_path = args.json or args.md.with_suffix(".json")
    json_path.write_text(
        json.dumps(
            {
                "machine": info,
                "command": cmd,
                "wall_seconds": wall,
                "quick": args.quick,
                "outcomes": [
                    {
                        "row": o.row,
                        "contender": o.contender,
                        "na": o.na,
                        "summary": o.summary,
                        "runs": o.runs,
                    }
                    for o in runner.outcomes.values()
                ],
            },
            indent=1,
            default=str,
        )
    )
    print()
    print(md)
    print(f"written: {args.md} {json_path} ({wall:.0f} s)")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())

"""Two ``aiodimse serve`` nodes against one, on one PostgreSQL database on this
machine, and what the database costs per request (issue 23).

    python3 benchmarks/nodes.py [--requests N] [--associations C] [--seconds S]
                                [--loop uvloop]

Starts a private cluster (``tests/store/pg_cluster.py``: fsync off, so the disk
is not measured; pg_stat_statements loaded), then for 1 and 2 nodes (``serve``
processes on 127.0.0.2, .3; INFO logging) drives, from this process, C
associations spread over the nodes:

* commitment: N storage commitment N-ACTIONs; timed until every report has been
  delivered (on an association of the node's own, as when the requester released).
* mpps: N/2 steps, each an N-CREATE (IN PROGRESS) and an N-SET (COMPLETED).

Each with the default per-AE quota (``[quotas] ae_max_bytes``: each request counts
its bytes in its calling AE's row of ``ae_usage``, under that row's lock) and
without (``ae_max_bytes = 0``). For each row: requests/s, and from
pg_stat_statements (reset before the row) the statements the database executed per
request, the transactions per request (pg_stat_database) and the server's
execution time per request (lock waits included: ``--verbose`` lists the costliest).

Then pgbench (``-M prepared``, as asyncpg prepares its statements) runs a script of
one request's writes on the critical path, the store's own SQL (commitment: the
commitment and its report, queued leased to the node, in one statement, then the
delivery's UPDATE; mpps: the INSERT, then the N-SET's read and compare-and-set
UPDATE), at 1, 2, 4 and 8 clients for S seconds: the requests/s the database
alone sustains, the ceiling for N nodes on N machines.

Wall clock on a shared machine: the numbers say what limits what, not the speed of
a deployment. Nothing here is asserted by a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiodimse import AE, Event, evt
from aiodimse.services import MPPS, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
from aiodimse.store.postgresql.store import _INSERT_COMMITMENT
from benchmarks.store_backends import _commit_request, _mpps

HOSTS = ("127.0.0.2", "127.0.0.3")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Node:
    """One ``aiodimse serve`` process on ``host``; ``start`` returns once it serves."""

    def __init__(self, host: str, config: Path, peer: str, data: Path) -> None:
        self.host, self.port = host, _free_port(host)
        self.log = data.with_suffix(".log")
        argv = [sys.executable, "-m", "aiodimse", "serve", "--config", str(config),
                "--host", host, "--port", str(self.port), "--data", str(data),
                "-aet", "ARCHIVE", "--peer", peer, "--log-level", "INFO"]
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT)

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        while " serving " not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start:\n{self.log.read_text()}")
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._out.close()


async def _spread(nodes: list[Node], n: int, conns: int, context: str, one: Any) -> None:
    """``n`` calls of ``one(assoc)`` over ``conns`` associations, round-robin on nodes."""
    requester = AE("CT1")
    requester.add_requested_context(context)

    async def worker(i: int, count: int) -> None:
        node = nodes[i % len(nodes)]
        assoc = await requester.associate(node.host, node.port, ae_title="ARCHIVE")
        try:
            for _ in range(count):
                await one(assoc)
        finally:
            await assoc.release()
    await asyncio.gather(*(worker(i, n // conns + (i < n % conns)) for i in range(conns)))


async def commitment_row(nodes: list[Node], n: int, conns: int, reports: Any) -> float:
    async def one(assoc: Any) -> None:
        status, _ = await assoc.send_n_action(
            _commit_request(str(generate_uid())), 1, STORAGE_COMMITMENT,
            STORAGE_COMMITMENT_INSTANCE)
        assert status.Status == 0, hex(status.Status)

    reports.expect(n)
    started = time.perf_counter()
    await _spread(nodes, n, conns, STORAGE_COMMITMENT, one)
    await asyncio.wait_for(reports.done.wait(), 600)
    return n / (time.perf_counter() - started)


async def mpps_row(nodes: list[Node], n: int, conns: int, reports: Any) -> float:
    async def one(assoc: Any) -> None:
        uid = str(generate_uid())
        status, _ = await assoc.send_n_create(
            _mpps(PerformedProcedureStepStatus="IN PROGRESS"), MPPS, uid)
        assert status.Status == 0, hex(status.Status)
        status, _ = await assoc.send_n_set(
            _mpps(PerformedProcedureStepStatus="COMPLETED"), MPPS, uid)
        assert status.Status == 0, hex(status.Status)

    started = time.perf_counter()
    await _spread(nodes, n // 2, conns, MPPS, one)
    return n / (time.perf_counter() - started)


class Reports:
    """The modality's SCP for the reports: counts them."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.got = self.wanted = 0

    def expect(self, n: int) -> None:
        self.got, self.wanted = 0, n
        self.done.clear()

    async def on_report(self, event: Event) -> tuple[int, None]:
        self.got += 1
        if self.got >= self.wanted:
            self.done.set()
        return 0, None


_STATS = ("SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0) "
          "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
          "WHERE d.datname = current_database() AND query NOT LIKE '%pg_stat%'")
_XACTS = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1"


async def _db_counts(url: str) -> tuple[int, float, int]:
    """(statements, execution ms, transactions) so far in the database."""
    import asyncpg
    conn = await asyncpg.connect(url)
    try:
        calls, ms = await conn.fetchrow(_STATS)
        xacts = await conn.fetchval(_XACTS, url.rsplit("/", 1)[1])
        return int(calls), float(ms), int(xacts)
    finally:
        await conn.close()


_TOP = ("SELECT calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
        "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
        "WHERE d.datname = current_database() AND query NOT LIKE '%pg_stat%' "
        "ORDER BY total_exec_time DESC LIMIT 8")


async def _top(url: str) -> list[tuple[int, float, str]]:
    """The statements that took the most execution time: (calls, ms, text)."""
    import asyncpg
    conn = await asyncpg.connect(url)
    try:
        return [(int(r[0]), float(r[1]), str(r[2])) for r in await conn.fetch(_TOP)]
    finally:
        await conn.close()


async def _reset(url: str) -> None:
    import asyncpg
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_stat_statements_reset()")
        await conn.execute("SELECT pg_stat_reset()")
    finally:
        await conn.close()
    await asyncio.sleep(0.6)  # the statistics collector's counters settle (PG < 15)


async def run_nodes(url: str, count: int, n: int, conns: int, tmp: Path, *,
                    quota: bool, verbose: bool) -> dict[str, tuple[float, float, float, float]]:
    """Per row: (requests/s, statements/request, transactions/request, exec ms/request)."""
    reports = Reports()
    modality = AE("CT1")
    modality.add_supported_context(STORAGE_COMMITMENT, scp_role=True)
    back = await modality.start_server(("127.0.0.1", 0),
                                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, reports.on_report)])
    config = tmp / f"serve-{count}-{quota}.toml"
    config.write_text(f'[server]\ndatabase = "{url}"\n\n'
                      "[commitment]\nsame_association = false\n\n[services]\nups = false\n"
                      + ("" if quota else "\n[quotas]\nae_max_bytes = 0\n"))
    nodes = [Node(HOSTS[i], config, f"CT1@127.0.0.1:{back.port}",
                  tmp / f"n{count}-{i}-{quota}") for i in range(count)]
    out = {}
    try:
        await asyncio.gather(*(node.ready() for node in nodes))
        await mpps_row(nodes, 40, conns, reports)  # warm: connections, prepared statements
        await commitment_row(nodes, 40, conns, reports)
        for name, row in (("commitment", commitment_row), ("mpps", mpps_row)):
            await _reset(url)
            before = await _db_counts(url)
            rate = await row(nodes, n, conns, reports)
            await asyncio.sleep(0.6)
            after = await _db_counts(url)
            out[name] = (rate, (after[0] - before[0]) / n, (after[2] - before[2]) / n,
                         (after[1] - before[1]) / n)
            if verbose:
                print(f"{name}, {count} node(s), quota {'on' if quota else 'off'}: "
                      "per request, calls and execution ms")
                for calls, ms, text in await _top(url):
                    print(f"  {calls / n:6.2f} {ms / n:8.3f}  {text}")
    finally:
        for node in nodes:
            node.stop()
        await back.shutdown(1.0)
    return out


# -- pgbench: one request's writes, the store's SQL with pgbench's variables --------

_INSERT = re.sub(r"\$(\d+)", r":p\1", _INSERT_COMMITMENT)
_COMMITMENT_SCRIPT = """\\set k random(1, 9000000000000000000)
\\set now 1700000000
""" + _INSERT + """ \\gset
UPDATE deliveries SET state = 'delivered', delivered_at = :now, result = NULL, attempts = attempts + 1, lease_owner = NULL, lease_until = NULL WHERE id = :id;
"""  # noqa: E501
# the parameters of _INSERT_COMMITMENT ($1 ... $17), as pgbench variables
_COMMITMENT_VARS = {
    1: "'commitment'", 2: "'t' || :k::text || '.' || :client_id::text", 3: "'CT1'", 4: "NULL",
    5: "'1.2.840.10008.1.20.1'", 6: "'1.2.840.10008.1.20.1.1'", 7: "1",
    8: "repeat('x', 200)", 9: ":now", 10: ":now + 3600", 11: ":now", 12: "'bench'",
    13: ":now + 60", 14: "NULL", 15: "'t' || :k::text || '.' || :client_id::text", 16: "'CT1'",
    17: ":now",
}

_M = "'m' || :k::text || '.' || :client_id::text"  # the step's UID
_MPPS_SCRIPT = f"""\\set k random(1, 9000000000000000000)
\\set now 1700000000
INSERT INTO mpps VALUES ({_M}, 'IN PROGRESS', repeat('x', 200), 'CT1', :now, :now)
  ON CONFLICT DO NOTHING RETURNING true;
SELECT *, xmin::text AS seen FROM mpps WHERE sop_instance_uid = {_M} \\gset
UPDATE mpps SET status = 'COMPLETED', dataset = repeat('y', 200), updated_at = :now
  WHERE sop_instance_uid = {_M} AND xmin::text = :seen;
"""


def _commitment_script() -> str:
    """The commitment script: pgbench substitutes ``:name`` variables only, so each
    ``:pN`` of the store's statement becomes its value's expression, inline."""
    text = _COMMITMENT_SCRIPT
    for number in sorted(_COMMITMENT_VARS, reverse=True):  # :p17 before :p1
        text = text.replace(f":p{number}::", f"({_COMMITMENT_VARS[number]})::")
        text = text.replace(f":p{number}", f"({_COMMITMENT_VARS[number]})")
    return text


def pgbench(url: str, script: str, clients: int, seconds: float, tmp: Path) -> float:
    """Transactions (script runs: requests) per second."""
    path = tmp / "script.sql"
    path.write_text(script)
    out = subprocess.run(
        [shutil.which("pgbench") or "pgbench", "-n", "-M", "prepared", "-c", str(clients),
         "-j", str(min(clients, os.cpu_count() or 1)), "-T", str(int(seconds)),
         "-f", str(path), url], capture_output=True, text=True, timeout=seconds + 120,
        check=False)
    found = re.search(r"tps = ([\d.]+)", out.stdout)
    if out.returncode != 0 or found is None:
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    return float(found[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--associations", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="per pgbench run")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--verbose", action="store_true",
                        help="the statements that cost the most, per row")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop
        uvloop.install()
    from tests.store.pg_cluster import PGCluster, pg_bindir
    bindir = pg_bindir()
    if bindir is None or shutil.which("pgbench") is None:
        print("needs PostgreSQL's server programs and pgbench")
        return 1
    cluster = PGCluster(bindir)
    cluster.options = ("-c shared_preload_libraries=pg_stat_statements "
                       "-c pg_stat_statements.track=all")
    cluster.init()
    try:
        url = cluster.new_database()
        name = url.rsplit("/", 1)[1]
        cluster.psql("CREATE EXTENSION pg_stat_statements", database=name)
        with tempfile.TemporaryDirectory() as tmp:
            rows = {(count, quota): asyncio.run(run_nodes(
                        url, count, args.requests, args.associations, Path(tmp),
                        quota=quota, verbose=args.verbose))
                    for quota in (True, False) for count in (1, 2)}
            bench = {what: {c: pgbench(url, script, c, args.seconds, Path(tmp))
                            for c in (1, 2, 4, 8)}
                     for what, script in (("commitment", _commitment_script()),
                                          ("mpps", _MPPS_SCRIPT))}
    finally:
        cluster.stop()
    print(f"{args.requests} requests over {args.associations} associations, "
          f"{os.cpu_count()} cores, loop {args.loop}; PostgreSQL fsync off")
    print(f"{'row':<11} {'quota':>5} {'nodes':>5} {'requests/s':>11} {'stmts/req':>10} "
          f"{'xacts/req':>10} {'exec ms/req':>12}")
    for (count, quota), measured in rows.items():
        for row, (rate, stmts, xacts, ms) in measured.items():
            print(f"{row:<11} {'on' if quota else 'off':>5} {count:>5} {rate:>11.0f} "
                  f"{stmts:>10.1f} {xacts:>10.1f} {ms:>12.3f}")
    print("pgbench, one request's writes per script run (requests/s the database "
          "sustains alone)")
    print(f"{'row':<11} " + " ".join(f"{c:>4} clients" for c in (1, 2, 4, 8)))
    for what, tps in bench.items():
        print(f"{what:<11} " + " ".join(f"{tps[c]:>12.0f}" for c in (1, 2, 4, 8)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

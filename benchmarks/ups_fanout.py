"""UPS event fan-out: one state change of a workitem with N subscribed AEs.

N receiving AEs listen on loopback in another process (one aiodimse server task
each, one port each, all in one event loop). This process holds the UPS Watch
service over a store (SQLite; ``--database postgresql``: a private PostgreSQL
cluster, fsync off, a fresh database per round) with the N subscriptions, and its
deliverer; at t0 it
reports the workitem IN PROGRESS (``state_changed``: one transaction queues N
reports), and the receivers' process says when the last of them has arrived.
Printed: time to queue, time to the first and the last delivery, reports/s, for
each ``--concurrency`` (the deliverer's ``max_concurrent``: associations at once)
side by side in one run. Reported, never asserted.

    PYTHONPATH=$PWD python3 benchmarks/ups_fanout.py [--subscribers 1000]
        [--concurrency 8,64,256] [--database sqlite|postgresql]

Each report goes on a new association (one per subscriber: each is a different
AE), so this measures association set-up + one N-EVENT-REPORT + release, N times,
C at a time, in one thread.

What pynetdicom would need for the same: it has no UPS event sender, so the
application would loop over subscribers with ``AE.associate`` + ``send_n_event_report``
+ ``release``; each association runs its own thread (``Association`` is a
``threading.Thread``, plus the DUL reader thread: two threads per association), so
C associations at once means 2C threads on the sender side, and each receiver AE,
if served by pynetdicom, one listening thread per server plus two per accepted
association (1,000 receivers: 1,000+ threads idle before any report). Nothing of
that queue survives a restart unless the application writes its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydicom.dataset import Dataset

from aiodimse import AE
from aiodimse.services.delivery import Deliverer, DeliveryPolicy, Peer
from aiodimse.services.ups.uids import UPS_PUSH
from aiodimse.services.ups.watch import UPSWatchService
from aiodimse.store import open_store

WORKITEM = "1.2.826.0.1.3680043.10.9.999"

_RECEIVERS = """
import asyncio, json, resource, sys, time
from aiodimse import AE, evt

async def main(count):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    seen = {"n": 0, "first": None}
    done = asyncio.Event()
    expected = [0]
    def on_report(event):
        if event.event_type == 1 and str(event.request.AffectedSOPInstanceUID) == sys.argv[2]:
            now = time.time()
            seen["first"] = seen["first"] or now
            seen["n"] += 1
            if seen["n"] >= expected[0]:
                print(json.dumps({"first": seen["first"], "last": now}), flush=True)
                seen["n"], seen["first"] = 0, None
        return 0, None
    ae = AE("RECEIVER")
    ae.add_supported_context("1.2.840.10008.5.1.4.34.6.4", scp_role=True)
    servers = [await ae.start_server(("127.0.0.1", 0),
                                     evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
               for _ in range(count)]
    print(json.dumps([s.port for s in servers]), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            break
        expected[0] = int(line)
    for s in servers:
        s.close()

asyncio.run(main(int(sys.argv[1])))
"""


class _Source:
    """The one workitem (the benchmark needs no other)."""

    async def workitem(self, uid: str) -> Dataset | None:
        return None

    async def workitems(self, identifier: Dataset | None):  # type: ignore[no-untyped-def]
        return
        yield

    def matches(self, identifier: Dataset, workitem: Dataset) -> bool:
        return True


def _workitem(state: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = UPS_PUSH, WORKITEM
    ds.ProcedureStepState, ds.InputReadinessState = state, "READY"
    return ds


async def _round(ports: list[int], concurrency: int, url: str,
                 receivers: subprocess.Popen[str]) -> dict[str, float]:
    assert receivers.stdin is not None and receivers.stdout is not None
    store = open_store(url)
    peers = {f"SUB{i:05d}": Peer(host="127.0.0.1", port=p) for i, p in enumerate(ports)}
    reporter = AE("UPS_SCP")
    reporter.acse_timeout = reporter.dimse_timeout = reporter.connection_timeout = 30
    policy = DeliveryPolicy(max_concurrent=concurrency, max_per_destination=1,
                            retry_initial=0.5, poll_interval=1.0)
    service = UPSWatchService(store, _Source(), Deliverer(store, reporter, peers, policy))
    await store.ups_created(WORKITEM, [(aet, False) for aet in peers])
    await service.deliverer.start()  # not service.start(): no SCP Status Change here
    receivers.stdin.write(f"{len(ports)}\n")
    receivers.stdin.flush()
    loop = asyncio.get_running_loop()
    t0 = time.time()
    await service.state_changed(_workitem("IN PROGRESS"), None)
    queued = time.time()
    line = await loop.run_in_executor(None, receivers.stdout.readline)
    times = json.loads(line)
    await service.deliverer.stop(5.0)
    await store.aclose()
    last = times["last"] - t0
    return {"concurrency": concurrency, "subscribers": len(ports),
            "queue_s": round(queued - t0, 4), "first_s": round(times["first"] - t0, 4),
            "last_s": round(last, 4), "reports_per_s": round(len(ports) / last, 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--concurrency", default="8,64,256",
                        help="the deliverer's max_concurrent values to run, side by side")
    parser.add_argument("--json", action="store_true", help="one JSON object per round")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="postgresql: a private cluster (PostgreSQL's server programs)")
    args = parser.parse_args()
    cluster = None
    if args.database == "postgresql":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.store.pg_cluster import PGCluster, pg_bindir
        bindir = pg_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL server programs found")
        cluster = PGCluster(bindir)
        cluster.init()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    receivers = subprocess.Popen(
        [sys.executable, "-c", _RECEIVERS, str(args.subscribers), WORKITEM],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert receivers.stdout is not None
        ports = json.loads(receivers.stdout.readline())
        print(f"# {args.subscribers} subscribers listening in process {receivers.pid}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
              flush=True)
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            with tempfile.TemporaryDirectory() as data:
                url = (str(Path(data) / "aiodimse.sqlite3") if cluster is None
                       else cluster.new_database())
                row = await _round(ports, concurrency, url, receivers)
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(f"concurrency {concurrency:4d}: queued in {row['queue_s']:.3f}s, "
                      f"first delivery {row['first_s']:.3f}s, last {row['last_s']:.3f}s, "
                      f"{row['reports_per_s']:.0f} reports/s", flush=True)
        print(f"# pynetdicom for the same: no UPS event sender; per report an "
              f"associate/send_n_event_report/release on its own threads (2 per "
              f"association: C at once = 2C threads), and {args.subscribers} pynetdicom "
              f"receivers = {args.subscribers} listening threads + 2 per accepted "
              f"association; no queue survives a restart", flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
        if receivers.stdin is not None:
            receivers.stdin.close()
        try:
            receivers.wait(10)
        except subprocess.TimeoutExpired:
            receivers.kill()
            receivers.wait()


if __name__ == "__main__":
    asyncio.run(main())

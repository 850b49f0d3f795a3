"""The commitment, MPPS and archive index rows on each store backend: SQLite
against PostgreSQL.

    python3 benchmarks/store_backends.py [--requests N] [--associations C]
                                         [--instances I] [--postgresql URL]
                                         [--loop uvloop]

One process, the library's services over loopback, wall-clock (the store's round
trips are what differs, so instruction counts would not show it). Rows:

* commitment: N N-ACTION storage commitment requests over C associations at once;
  the time runs until every report is delivered (on an association of the
  deliverer's own to the modality's SCP, as ``serve`` does when the requesting one
  has gone): request, transaction, queue, claim, delivery, record.
* mpps: N/2 steps, each an N-CREATE (IN PROGRESS) and an N-SET (COMPLETED).
* index-batch: I instances indexed (``add_records``) in batches of 500, as the
  indexer of ``--index-dir`` does: one study and series each, 1,000 patients.
* index-store: I instances indexed one per call by C writers at once, as C-STORE
  does (the archive writer indexes each instance before answering), 10 instances
  per series, 5 series per study: several writers in one study at a time.
* find-all: a Study Root STUDY-level C-FIND (query engine, no network) matching
  every study with ten keys, the counts and ModalitiesInStudy computed; matches/s.
* find-one: C writers' worth of concurrent C-FINDs, each for one study by its
  Study Instance UID; queries/s.
* ups-cycle: N/2 UPS workitems, each created, claimed and canceled (three store
  calls, the claim and cancel read-check-writes) by C writers at once; cycles/s.
* ups-fanout: one UPS change reported to N/2 subscribers: the reports queued in
  one call, then claimed as the deliverer claims them (8 destinations per claim),
  and marked delivered as its recorder does when they are acknowledged together:
  one call per claim (at best; at worst one per report, ``ups-fanout-1``);
  reports/s. (Network sends: benchmarks/ups_fanout.py.)

Without ``--postgresql`` a private cluster is started for the run (the test
harness, ``tests/store/pg_cluster.py``; PostgreSQL's server programs needed) with
fsync off, so the ratio shows the round trips, not the disk. Prints requests/s per
backend and PostgreSQL / SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiodimse import AE, Event, evt
from aiodimse.archive import STUDY_ROOT_FIND, QueryEngine
from aiodimse.services import (
    MPPS,
    MPPSSCP,
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    StorageCommitmentSCP,
)
from aiodimse.services.delivery import DeliveryPolicy, Peer
from aiodimse.store import Delivery, Store, open_store
from aiodimse.store.interface import WorkitemRow
from aiodimse.store.records import InstanceRecord

CT = "1.2.840.10008.5.1.4.1.1.2"
UPS_PUSH = "1.2.840.10008.5.1.4.34.6.1"


def _commit_request(uid: str) -> Dataset:
    ds, item = Dataset(), Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = CT, str(generate_uid())
    ds.TransactionUID, ds.ReferencedSOPSequence = uid, [item]
    return ds


async def _spread(n: int, conns: int, one: Callable[[object], Awaitable[None]],
                  open_: Callable[[], Awaitable[object]]) -> None:
    async def worker(count: int) -> None:
        assoc = await open_()
        try:
            for _ in range(count):
                await one(assoc)
        finally:
            await assoc.release()  # type: ignore[attr-defined]
    await asyncio.gather(*(worker(n // conns + (i < n % conns)) for i in range(conns)))


async def commitment_row(store: Store, n: int, conns: int) -> float:
    delivered = asyncio.Event()
    got = 0

    async def on_report(event: Event) -> tuple[int, None]:
        nonlocal got
        got += 1
        if got >= n:
            delivered.set()
        return 0, None

    modality = AE("CT1")
    modality.add_supported_context(STORAGE_COMMITMENT, scp_role=True)
    back = await modality.start_server(("127.0.0.1", 0),
                                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    scp = StorageCommitmentSCP(store, AE("ARCHIVE"), {"CT1": Peer(host="127.0.0.1",
                                                                  port=back.port)},
                               DeliveryPolicy(same_association=False))
    ae = AE("ARCHIVE")
    ae.maximum_associations = conns + 8
    ae.add_supported_context(STORAGE_COMMITMENT)
    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=scp.handlers())
    await store.set_index_complete(True)
    await store.add_instances([], 0.0)
    requester = AE("CT1")
    requester.add_requested_context(STORAGE_COMMITMENT)
    await scp.start()

    async def one(assoc: object) -> None:
        uid = str(generate_uid())
        status, _ = await assoc.send_n_action(  # type: ignore[attr-defined]
            _commit_request(uid), 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
        assert status.Status == 0, hex(status.Status)

    try:
        started = time.perf_counter()
        await _spread(n, conns, one, lambda: requester.associate(
            "127.0.0.1", server.port, ae_title="ARCHIVE"))
        await asyncio.wait_for(delivered.wait(), 600)
        return n / (time.perf_counter() - started)
    finally:
        await scp.stop(1.0)
        await server.shutdown(1.0)
        await back.shutdown(1.0)


def _mpps(**values: str) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


async def mpps_row(store: Store, n: int, conns: int) -> float:
    scp = MPPSSCP(store)
    ae = AE("ARCHIVE")
    ae.maximum_associations = conns + 8
    ae.add_supported_context(MPPS)
    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=scp.handlers())
    requester = AE("CT1")
    requester.add_requested_context(MPPS)

    async def one(assoc: object) -> None:
        uid = str(generate_uid())
        status, _ = await assoc.send_n_create(  # type: ignore[attr-defined]
            _mpps(PerformedProcedureStepStatus="IN PROGRESS"), MPPS, uid)
        assert status.Status == 0, hex(status.Status)
        status, _ = await assoc.send_n_set(  # type: ignore[attr-defined]
            _mpps(PerformedProcedureStepStatus="COMPLETED"), MPPS, uid)
        assert status.Status == 0, hex(status.Status)

    try:
        started = time.perf_counter()
        await _spread(n // 2, conns, one, lambda: requester.associate(
            "127.0.0.1", server.port, ae_title="ARCHIVE"))
        return n / (time.perf_counter() - started)
    finally:
        await server.shutdown(1.0)


ROOT = "1.2.826.0.1.3680043.10.1451.8"


def _record(n: int, study: int, series: int) -> InstanceRecord:
    uid = f"{ROOT}.3.{n}"
    return InstanceRecord(
        sop_class_uid=CT, sop_instance_uid=uid, path=f"/archive/{uid}.dcm",
        transfer_syntax="1.2.840.10008.1.2.1", size=500_000, mtime_ns=0, attrs={
            "PatientID": f"PID{study % 1000}", "PatientName": f"Doe{study % 100}^Jane",
            "PatientBirthDate": "19700101", "PatientSex": "F",
            "StudyInstanceUID": f"{ROOT}.1.{study}",
            "SeriesInstanceUID": f"{ROOT}.2.{series}",
            "StudyDate": f"2024{1 + study % 12:02d}15", "StudyTime": "101500",
            "AccessionNumber": f"A{study}", "StudyID": str(study % 1000),
            "StudyDescription": "CHEST", "Modality": "CT", "SeriesNumber": "1",
            "InstanceNumber": str(n), "SOPInstanceUID": uid})


async def index_batch_row(store: Store, n: int, conns: int) -> float:
    records = [_record(i, i, i) for i in range(n)]
    started = time.perf_counter()
    for at in range(0, n, 500):
        await store.add_records(records[at:at + 500], 1.0)
    return n / (time.perf_counter() - started)


async def index_store_row(store: Store, n: int, conns: int) -> float:
    # instance i: series i // 10, study i // 50; writer w takes every conns-th
    records = [_record(n + i, 100_000 + i // 50, 100_000 + i // 10) for i in range(n)]

    async def writer(w: int) -> None:
        for rec in records[w::conns]:
            await store.add_records([rec], 2.0)

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(conns)))
    return n / (time.perf_counter() - started)


def _study_query(study: str = "") -> Dataset:
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    for key in ("PatientName", "PatientID", "StudyDate", "StudyTime", "AccessionNumber",
                "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                "NumberOfStudyRelatedInstances"):
        setattr(q, key, "")
    q.StudyInstanceUID = study
    return q


async def find_all_row(store: Store, n: int, conns: int) -> float:
    engine = QueryEngine(store)
    started = time.perf_counter()
    found = [r async for r in engine.find(STUDY_ROOT_FIND, _study_query())]
    assert len(found) >= n, len(found)
    return len(found) / (time.perf_counter() - started)


async def find_one_row(store: Store, n: int, conns: int) -> float:
    engine = QueryEngine(store)
    queries = min(n, 2000)

    async def finder(w: int) -> None:
        for i in range(w, queries, conns):
            found = [r async for r in engine.find(STUDY_ROOT_FIND,
                                                  _study_query(f"{ROOT}.1.{i}"))]
            assert len(found) == 1

    started = time.perf_counter()
    await asyncio.gather(*(finder(w) for w in range(conns)))
    return queries / (time.perf_counter() - started)


def _workitem(uid: str, state: str = "SCHEDULED", lock: str | None = None) -> WorkitemRow:
    return WorkitemRow(sop_instance_uid=uid, state=state, transaction_uid=lock,
                       dataset=b"\x00" * 400, patient_id="P1",
                       scheduled_start="20260101100000", worklist_label="AI")


async def ups_cycle_row(store: Store, n: int, conns: int) -> float:
    cycles = n // 2

    def to(state: str, lock: str) -> Callable[[WorkitemRow | None], WorkitemRow | str]:
        def change(current: WorkitemRow | None) -> WorkitemRow | str:
            assert current is not None
            return _workitem(current.sop_instance_uid, state, lock)
        return change

    async def worker(w: int) -> None:
        for i in range(w, cycles, conns):
            uid, lock = f"{ROOT}.9.{i}", f"{ROOT}.8.{i}"
            assert await store.ups_create(_workitem(uid), time.time())
            for state in ("IN PROGRESS", "CANCELED"):
                assert isinstance(await store.ups_update(uid, to(state, lock), time.time()),
                                  WorkitemRow)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conns)))
    return cycles / (time.perf_counter() - started)


async def ups_fanout_row(store: Store, n: int, conns: int, *, together: bool = True
                         ) -> float:
    subscribers, now = n // 2, time.time()
    started = time.perf_counter()
    await store.ups_queue([Delivery(
        kind="ups", key=f"fan-{together}-{i}", destination=f"S{i:05d}", sop_class=UPS_PUSH,
        sop_instance=f"{ROOT}.7", payload="{}", event_type=1, ordering=f"{ROOT}.7",
        created_at=now, deadline=now + 600, next_attempt=now) for i in range(subscribers)])
    delivered = 0
    while claimed := await store.claim_due("bench", time.time(), 60, 8 * 32,
                                           per_destination=32, max_destinations=8):
        marks = [(item.id, None) for item in claimed]
        for at in range(0, len(marks), len(marks) if together else 1):
            await store.mark_delivered_many(marks[at:at + (len(marks) if together else 1)],
                                            time.time())
        delivered += len(marks)
    assert delivered == subscribers
    return subscribers / (time.perf_counter() - started)


async def ups_fanout_one_row(store: Store, n: int, conns: int) -> float:
    return await ups_fanout_row(store, n, conns, together=False)


ROWS = (("commitment", commitment_row, False), ("mpps", mpps_row, False),
        ("index-batch", index_batch_row, True), ("index-store", index_store_row, True),
        ("find-all", find_all_row, True), ("find-one", find_one_row, True),
        ("ups-cycle", ups_cycle_row, False), ("ups-fanout", ups_fanout_row, False),
        ("ups-fanout-1", ups_fanout_one_row, False))


async def measure(url: str, n: int, conns: int, instances: int,
                  rows: Collection[str]) -> dict[str, float]:
    rates = {}
    for name, row, archive in ROWS:
        if name not in rows:
            continue
        store = open_store(url)
        try:
            rates[name] = await row(store, instances if archive else n, conns)
        finally:
            await store.aclose()
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--associations", type=int, default=8)
    parser.add_argument("--instances", type=int, default=5000,
                        help="instances indexed per archive index row")
    parser.add_argument("--postgresql", metavar="URL", help="an empty database to use")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--rows", default=",".join(name for name, _, _ in ROWS),
                        help="comma-separated rows to run (default: all)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of both backends, alternating (a shared machine's "
                             "load drifts: each run's ratio compares like with like)")
    args = parser.parse_args()
    rows = args.rows.split(",")
    unknown = set(rows) - {name for name, _, _ in ROWS}
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    if args.loop == "uvloop":
        import uvloop
        uvloop.install()
    cluster = None
    pg_url = args.postgresql
    if pg_url is None:
        from tests.store.pg_cluster import PGCluster, pg_bindir
        bindir = pg_bindir()
        if bindir is None:
            print("no PostgreSQL server programs found: give --postgresql URL")
            return 1
        cluster = PGCluster(bindir)
        cluster.init()
        pg_url = cluster.new_database()
    runs = []
    try:
        for run in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                sqlite = asyncio.run(measure(str(Path(tmp) / "b.sqlite3"), args.requests,
                                             args.associations, args.instances, rows))
            url = pg_url if run == 0 or cluster is None else cluster.new_database()
            pg = asyncio.run(measure(url, args.requests, args.associations, args.instances,
                                     rows))
            runs.append((sqlite, pg))
    finally:
        if cluster is not None:
            cluster.stop()
    print(f"{args.requests} requests over {args.associations} associations (writers), "
          f"{args.instances} instances indexed, loop {args.loop}")
    print("per second: requests (commitment, mpps), instances indexed (index-*), "
          "matches (find-all), queries (find-one), UPS cycles and reports (ups-*)")
    print(f"{'run':<4}{'row':<12} {'SQLite /s':>13} {'PostgreSQL /s':>17} {'ratio':>7}")
    for run, (sqlite, pg) in enumerate(runs, 1):
        for name in sqlite:
            print(f"{run:<4}{name:<12} {sqlite[name]:>13.0f} {pg[name]:>17.0f} "
                  f"{pg[name] / sqlite[name]:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

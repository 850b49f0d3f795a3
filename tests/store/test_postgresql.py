"""What only the PostgreSQL backend has: the schema made and upgraded at start under
an advisory lock (several nodes starting at once), an outage (the server stopped
mid-test: ``StoreError(unavailable=True)``, logged once, then resumed without a new
open), ``NOTIFY`` waking the deliverers of other stores (nodes), the one-line
error without the driver, the archive index's schema step on an older database,
and a deadlock between two nodes' batches run again."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydicom.dataset import Dataset

from aiodimse import AE, Event, evt
from aiodimse.services import (
    MPPS,
    MPPSSCP,
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    StorageCommitmentSCP,
)
from aiodimse.services.delivery import Deliverer, DeliveryPolicy, Peer, StoredReports
from aiodimse.store import Delivery, StoreError, open_store
from aiodimse.store.postgresql import DRIVER_MISSING, archive
from aiodimse.store.postgresql.schema import STEPS, VERSION, prepare
from aiodimse.store.postgresql.store import PostgreSQLStore
from aiodimse.store.records import IMAGE, IndexQuery, InstanceRecord

from ..archive._data import PAT, record
from ._records import CT, commitment, event
from .pg_cluster import PGCluster

UPS_EVENT = "1.2.840.10008.5.1.4.34.6.4"
STGCMT, STGCMT_INSTANCE = STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE


async def _until(check: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _pg(store: object) -> PostgreSQLStore:
    assert isinstance(store, PostgreSQLStore)
    return store


async def _sql(store: PostgreSQLStore, query: str, *args: Any) -> Any:
    return await store.db.run(lambda conn: conn.fetch(query, *args))


async def test_the_schema_is_made_once_by_nodes_starting_together(
    pg_cluster: PGCluster,
) -> None:
    url = pg_cluster.new_database()
    nodes = [_pg(open_store(url)) for _ in range(4)]
    try:
        assert await asyncio.gather(*(n.count_pending() for n in nodes)) == [0] * 4
        found = sorted(n.db.upgraded_from for n in nodes)  # type: ignore[type-var]
        assert found.count(0) == 1 and found[1:] == [VERSION] * 3, found  # one made it
        rows = await _sql(nodes[0], "SELECT version FROM schema_version")
        assert [r[0] for r in rows] == [VERSION]
        tables = await _sql(nodes[0], "SELECT tablename FROM pg_tables WHERE "
                                      "schemaname = 'public' ORDER BY 1")
        assert [r[0] for r in tables] == ["ae_usage", "commitments", "deliveries", "files",
                                          "instances", "meta", "mpps", "patients",
                                          "schema_version", "series", "studies",
                                          "ups_global_subscriptions", "ups_subscriptions",
                                          "ups_workitems"]
    finally:
        for n in nodes:
            await n.aclose()


async def test_migrations_run_again_upgrade_and_refuse_a_newer_schema(
    pg_cluster: PGCluster,
) -> None:
    url = pg_cluster.new_database()
    store = _pg(open_store(url))
    try:
        assert await store.add_commitment(*commitment("1.1"))
        # run again: nothing to do, nothing lost
        assert await store.db.run(prepare) == VERSION
        assert await store.commitment_state("1.1") == ("pending", 0, None)
        # a later step: applied once, in order, the version recorded
        later = (*STEPS, "ALTER TABLE meta ADD COLUMN note TEXT; "
                         "UPDATE meta SET note = 'v2'")
        await store.set_index_complete(False)
        assert await store.db.run(lambda conn: prepare(conn, later)) == VERSION
        assert await store.db.run(lambda conn: prepare(conn, later)) == VERSION + 1
        rows = await _sql(store, "SELECT note FROM meta")
        assert [r[0] for r in rows] == ["v2"]
        assert await store.commitment_state("1.1") == ("pending", 0, None)
    finally:
        await store.aclose()
    newer = _pg(open_store(url))  # knows only VERSION: refused, nothing touched
    try:
        with pytest.raises(StoreError, match=f"schema version {VERSION + 1}"):
            await newer.count_pending()
    finally:
        await newer.aclose()


async def test_a_version_1_database_gains_the_archive_index(pg_cluster: PGCluster) -> None:
    """Step 2 (the archive index) on a database indexed before it: its instances stay
    (storage commitment finds them) without a series (no query shows them), and its
    file stats go, so the next scan reads each file once and fills the new columns."""
    url = pg_cluster.new_database()
    store = _pg(open_store(url))
    try:
        await store.db.run(lambda conn: conn.execute("SELECT 1"))  # made at VERSION
        await store.db.run(lambda conn: conn.execute(
            "DROP TABLE patients, studies, series; DROP INDEX instances_id; "
            "DROP TABLE ups_workitems, ups_subscriptions, ups_global_subscriptions; "
            "DROP INDEX deliveries_destination; "
            "ALTER TABLE instances DROP COLUMN id, DROP COLUMN series, "
            "DROP COLUMN instance_number, DROP COLUMN transfer_syntax, DROP COLUMN size; "
            "UPDATE schema_version SET version = 1"))
        await store.add_files([(CT, "1.1", "/a/1.dcm", 10, 111)], 1.0)
        assert await store.file_stats(["/a/1.dcm"]) == {"/a/1.dcm": (10, 111)}
        assert await store.db.run(prepare) == 1
        assert await store.find_instances(["1.1"]) == {"1.1": CT}
        assert await store.file_stats(["/a/1.dcm"]) == {}
        everyone = IndexQuery(IMAGE, (), ("SOPInstanceUID",))
        assert [r async for r in store.match(everyone)] == []
        await store.add_records([InstanceRecord(
            sop_class_uid=CT, sop_instance_uid="1.1", path="/a/1.dcm", transfer_syntax="",
            size=10, mtime_ns=111, attrs={"StudyInstanceUID": "2.1",
                                          "SeriesInstanceUID": "2.2"})], 2.0)
        assert [r async for r in store.match(everyone)] == [{"SOPInstanceUID": "1.1"}]
    finally:
        await store.aclose()


async def test_an_outage_fails_calls_once_logged_and_is_outlived(
    pg_cluster: PGCluster, caplog: pytest.LogCaptureFixture,
) -> None:
    url = pg_cluster.new_database()
    store, other = _pg(open_store(url)), _pg(open_store(url))
    woken = asyncio.Event()
    try:
        assert await store.add_commitment(*commitment("1.1"))
        await store.watch(woken.set)
        await _until(lambda: _listening(store))
        caplog.set_level(logging.DEBUG, "aiodimse.store")
        caplog.clear()
        pg_cluster.pause()
        try:
            for uid in ("1.2", "1.3", "1.4"):
                with pytest.raises(StoreError) as caught:
                    await store.add_commitment(*commitment(uid))
                assert caught.value.unavailable and not caught.value.full
            with pytest.raises(StoreError) as caught:
                await store.claim_due("A", 100.0, 60.0, 10)
            assert caught.value.unavailable
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]  # once per outage
            woken.clear()
        finally:
            pg_cluster.resume()
        # the same store, no new open: it reconnects by itself
        assert await store.add_commitment(*commitment("1.2"))
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        assert await other.commitment_state("1.1") == ("pending", 0, None)
        assert await other.commitment_state("1.3") is None  # nothing half-written
        assert await store.count_pending() == 2
        # the listener came back too: woken once reconnected, and by others' work
        await asyncio.wait_for(woken.wait(), 20)
        woken.clear()
        assert await other.enqueue(event("k1"))
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        await store.aclose()
        await other.aclose()


async def _listening(store: PostgreSQLStore) -> bool:
    rows = await _sql(store, "SELECT count(*) FROM pg_listening_channels()")
    others = await _sql(store, "SELECT count(*) FROM pg_stat_activity WHERE "
                               "query LIKE 'LISTEN%'")
    return bool(rows[0][0] or others[0][0])


async def test_notify_wakes_the_other_stores_not_the_sender(pg_cluster: PGCluster) -> None:
    url = pg_cluster.new_database()
    a, b = _pg(open_store(url)), _pg(open_store(url))
    wakes: list[str] = []
    try:
        await a.watch(lambda: wakes.append("a"))
        await _until(lambda: _listening(a))
        assert await a.enqueue(event("own", ordering=None))  # its own: not heard
        assert await b.enqueue(event("other", ordering=None))
        await _until(lambda: _true(wakes))
        assert await b.add_commitment(*commitment("1.1"))
        await _until(lambda: _true(len(wakes) >= 2))
        items = await b.claim_due("B", 100.0, 60.0, 10)
        await b.release_leases("B", [items[0].id])  # given back: the others hear it
        await b.release_leases("B", [items[0].id])  # nothing given back: no notice
        await a.release_leases("A")  # its own: not heard
        await _until(lambda: _true(len(wakes) >= 3))
        assert await b.enqueue(event("last", ordering=None))  # after all the above
        await _until(lambda: _true(len(wakes) >= 4))
        assert wakes == ["a"] * 4
    finally:
        await a.aclose()
        await b.aclose()


async def _true(value: object) -> bool:
    return bool(value)


async def test_a_node_delivers_what_another_queued_without_polling(
    pg_cluster: PGCluster,
) -> None:
    """Node B's deliverer (polling every 10 minutes) is woken by node A's NOTIFY and
    delivers A's report once; A, whose store queued it, has no deliverer."""
    url = pg_cluster.new_database()
    got: list[str] = []

    async def on_report(event: Event) -> tuple[int, None]:
        got.append(str(event.event_information.TextString))
        return 0, None

    ris = AE("RIS")
    ris.add_supported_context(UPS_EVENT, scp_role=True)
    server = await ris.start_server(("127.0.0.1", 0),
                                    evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    node_a, node_b = _pg(open_store(url)), _pg(open_store(url))
    deliverer = Deliverer(node_b, AE("NODE_B"), {"RIS": Peer(host="127.0.0.1",
                                                             port=server.port)},
                          DeliveryPolicy(poll_interval=600.0))
    deliverer.add_kind(StoredReports("ups", UPS_EVENT))
    try:
        await deliverer.start()
        await _until(lambda: _listening(node_b))
        await asyncio.sleep(0.2)  # the deliverer's first poll found nothing
        info = Dataset()
        info.TextString = "from A"
        now = time.time()
        assert await node_a.enqueue(Delivery(
            kind="ups", key="e1", destination="RIS", sop_class=UPS_EVENT,
            sop_instance="1.2.3", payload=info.to_json(), event_type=1, created_at=now,
            deadline=now + 60, next_attempt=now))
        await _until(lambda: _delivered(node_a, "e1"), timeout=15)
        assert got == ["from A"]
    finally:
        await deliverer.stop(1.0)
        await server.shutdown(1.0)
        await node_a.aclose()
        await node_b.aclose()


async def _delivered(store: PostgreSQLStore, key: str) -> bool:
    state = await store.delivery_state("ups", key)
    return state is not None and state[0] == "delivered"


def test_without_the_driver_serve_says_so_in_one_line(tmp_path: Any) -> None:
    code = ("import sys; sys.modules['asyncpg'] = None; "
            "from aiodimse.__main__ import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run(
        [sys.executable, "-c", code, "serve", "--data", str(tmp_path / "d"), "--port", "0",
         "--database", "postgresql://nobody@127.0.0.1:9/none",
         "--disable-service", "storage", "--disable-service", "query_retrieve",
         "--disable-service", "ups"],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == f"aiodimse serve: {DRIVER_MISSING}\n"


async def test_services_answer_out_of_resources_while_the_database_is_down(
    pg_cluster: PGCluster, caplog: pytest.LogCaptureFixture,
) -> None:
    """MPPS and storage commitment with the database stopped: 0x0213, nothing
    acknowledged, one ERROR for the outage (not one per request); served again once
    it is back, by the same store."""
    store = open_store(pg_cluster.new_database())
    commitment_scp = StorageCommitmentSCP(store, AE("ARCHIVE"), {},
                                          DeliveryPolicy(poll_interval=0.2))
    ae = AE("ARCHIVE")
    ae.add_supported_context(STGCMT)
    ae.add_supported_context(MPPS)
    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=[
        *commitment_scp.handlers(), *MPPSSCP(store).handlers()])
    await commitment_scp.start()
    modality = AE("CT1")
    modality.add_requested_context(STGCMT)
    modality.add_requested_context(MPPS)
    in_progress = Dataset()
    in_progress.PerformedProcedureStepStatus = "IN PROGRESS"
    try:
        async with modality.associate("127.0.0.1", server.port, ae_title="ARCHIVE") as assoc:
            status, _ = await assoc.send_n_create(in_progress, MPPS, "1.2.3.1")
            assert status.Status == 0
            caplog.set_level(logging.DEBUG)
            caplog.clear()
            pg_cluster.pause()
            try:
                answers = []
                for i in range(3):
                    status, _ = await assoc.send_n_create(in_progress, MPPS, f"1.2.3.{i + 2}")
                    answers.append((int(status.Status), str(status.get("ErrorComment", ""))))
                    status, _ = await assoc.send_n_action(
                        _commit_request(f"1.2.4.{i}"), 1, STGCMT, STGCMT_INSTANCE)
                    answers.append((int(status.Status), str(status.get("ErrorComment", ""))))
                await asyncio.sleep(0.5)  # the deliverer polls meanwhile, and fails
            finally:
                pg_cluster.resume()
            assert answers == [(0x0213, "the MPPS store is unavailable"),
                               (0x0213, "the commitment store is unavailable")] * 3
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1 and "PostgreSQL" in errors[0], errors
            assert not [r for r in caplog.records if r.name.startswith("asyncpg")]
            status, _ = await assoc.send_n_create(in_progress, MPPS, "1.2.3.9")
            assert status.Status == 0
        assert await store.mpps_get("1.2.3.2") is None  # nothing acknowledged, none stored
        assert await store.commitment_state("1.2.4.0") is None
        assert await store.mpps_get("1.2.3.9") is not None
    finally:
        await server.shutdown(1.0)
        await commitment_scp.stop(1.0)
        await store.aclose()


def _commit_request(uid: str) -> Dataset:
    ds, item = Dataset(), Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", uid
    ds.TransactionUID, ds.ReferencedSOPSequence = uid, [item]
    return ds


class _Gated:
    """A connection that, after its first record's writing statement, signals
    ``mine`` and waits for ``theirs``: two of them lock in an order of our choice."""

    def __init__(self, conn: Any, mine: asyncio.Event, theirs: asyncio.Event) -> None:
        self.conn, self.mine, self.theirs = conn, mine, theirs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        row = await self.conn.fetchrow(query, *args)
        if query.startswith("WITH ") and not self.mine.is_set():
            self.mine.set()
            await self.theirs.wait()
        return row


async def test_a_deadlock_between_two_batches_is_run_again(pg_cluster: PGCluster) -> None:
    """Two batches naming two patients in opposite orders, each waiting after its
    first record until the other wrote its own: each then waits for the other's
    lock, PostgreSQL fails one for the deadlock, and that one runs again whole:
    both succeed, each instance once, one row per patient."""
    url = pg_cluster.new_database()
    a, b = _pg(open_store(url)), _pg(open_store(url))
    try:
        first, second = record(1, 1, 1), record(2, 2, 2)  # patients PID1 and PID0
        again_second = record(3, 2, 2, PatientName="B^Second")
        again_first = record(4, 1, 1, PatientName="B^First")
        a_done, b_done = asyncio.Event(), asyncio.Event()
        counts = await asyncio.gather(
            a.db.run(lambda conn: archive.add_records(
                _Gated(conn, a_done, b_done), [first, second], 1.0)),
            b.db.run(lambda conn: archive.add_records(
                _Gated(conn, b_done, a_done), [again_second, again_first], 1.0)))
        assert counts == [2, 2]
        rows = await _sql(a, "SELECT patient_id, count(*) FROM patients GROUP BY 1 ORDER BY 1")
        assert [tuple(r) for r in rows] == [("PID0", 1), ("PID1", 1)]
        assert await a.count_instances() == 4
        names = await _sql(a, "SELECT patient_name FROM patients ORDER BY patient_id")
        # the batch run again committed last: its values, both patients' (not a mix)
        assert {r[0] for r in names} in ({"Name0^Given", "Name1^Given"},
                                         {"B^First", "B^Second"})
        study = IndexQuery(IMAGE, (), ("SOPInstanceUID",))
        assert sorted([r["SOPInstanceUID"] async for r in a.match(study)]) == [
            f"{PAT}.3.{n}" for n in (1, 2, 3, 4)]
        deadlocks = await _sql(a, "SELECT deadlocks FROM pg_stat_database "
                                  "WHERE datname = current_database()")
        assert deadlocks[0][0] >= 1
    finally:
        await a.aclose()
        await b.aclose()

"""The UPS workitem store, the same on every backend: atomic read-change-write (two
workers or nodes claiming one workitem at once: one wins), the columns a C-FIND
narrows by; and the upgrade of an older database of each backend that had no UPS
tables."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from aiodimse.store import Store, open_store
from aiodimse.store.interface import UPSGlobalSubscription, WorkitemQuery, WorkitemRow
from aiodimse.store.postgresql.schema import VERSION as PG_VERSION
from aiodimse.store.postgresql.schema import prepare
from aiodimse.store.postgresql.store import PostgreSQLStore
from aiodimse.store.sqlite import DB_FILENAME, SCHEMA_VERSION, SQLiteStore

from .conftest import OpenStore
from .pg_cluster import PGCluster


def _row(uid: str, state: str = "SCHEDULED", start: str = "20260101100000",
         patient: str = "P1") -> WorkitemRow:
    return WorkitemRow(sop_instance_uid=uid, state=state, transaction_uid=None,
                       dataset=b"", patient_id=patient, scheduled_start=start,
                       worklist_label="AI")


async def _uids(store: Store, query: WorkitemQuery) -> list[str]:
    return [r.sop_instance_uid async for r in store.ups_match(query)]


async def test_create_get_update_and_narrowing(stores: OpenStore) -> None:
    store = stores()
    now = time.time()
    assert await store.ups_create(_row("1.1"), now)
    assert not await store.ups_create(_row("1.1"), now)  # exists
    assert await store.ups_create(_row("1.2", start="20260102080000", patient="P2"), now)
    assert await store.ups_create(_row("1.3", state="IN PROGRESS"), now)
    assert await _uids(store, WorkitemQuery()) == ["1.1", "1.2", "1.3"]
    assert await _uids(store, WorkitemQuery(states=("SCHEDULED",))) == ["1.1", "1.2"]
    assert await _uids(store, WorkitemQuery(patient_id="P2")) == ["1.2"]
    assert await _uids(store, WorkitemQuery(start_from="20260102")) == ["1.2"]
    assert await _uids(store, WorkitemQuery(start_to="20260101")) == ["1.1", "1.3"]
    assert await _uids(store, WorkitemQuery(uids=("1.3", "9.9"))) == ["1.3"]

    def refuse(current: WorkitemRow | None) -> WorkitemRow | str:
        assert current is not None
        return "no"

    assert await store.ups_update("1.1", refuse, now) == "no"
    got = await store.ups_get("1.1")
    assert got is not None and got.state == "SCHEDULED"

    def claim(current: WorkitemRow | None) -> WorkitemRow | str:
        assert current is not None
        return WorkitemRow(sop_instance_uid=current.sop_instance_uid, state="IN PROGRESS",
                           transaction_uid="2.25.1", dataset=current.dataset)

    assert isinstance(await store.ups_update("1.1", claim, now), WorkitemRow)
    got = await store.ups_get("1.1")
    assert got is not None and (got.state, got.transaction_uid) == ("IN PROGRESS", "2.25.1")
    assert await store.ups_get("9.9") is None


async def test_many_workitems_come_in_batches(stores: OpenStore) -> None:
    store = stores()
    for n in range(100):  # past FIRST_BATCH: several batches, none lost or doubled
        await store.ups_create(_row(f"1.{n}"), time.time())
    assert await _uids(store, WorkitemQuery()) == [f"1.{n}" for n in range(100)]


def _claim(lock: str) -> Callable[[WorkitemRow | None], WorkitemRow | str]:
    """Change UPS State to IN PROGRESS under ``lock``, as the Pull service decides it."""
    def change(current: WorkitemRow | None) -> WorkitemRow | str:
        if current is None or current.state != "SCHEDULED":
            return "refused"  # the service answers 0xC302 here
        return WorkitemRow(sop_instance_uid=current.sop_instance_uid, state="IN PROGRESS",
                           transaction_uid=lock, dataset=current.dataset)
    return change


async def test_two_workers_claiming_at_once_one_wins(stores: OpenStore) -> None:
    """Two stores (two workers or nodes) claim each of eight workitems at the same
    moment: for each exactly one claim is stored, the other is refused."""
    a, b = stores(), stores()
    uids = [f"1.{n}" for n in range(8)]
    for uid in uids:
        assert await a.ups_create(_row(uid), time.time())
    results = await asyncio.gather(*(store.ups_update(uid, _claim(name), time.time())
                                     for uid in uids for store, name in ((a, "A"), (b, "B"))))
    for uid, pair in zip(uids, zip(results[::2], results[1::2], strict=True), strict=True):
        won = [r for r in pair if isinstance(r, WorkitemRow)]
        assert len(won) == 1 and pair.count("refused") == 1, pair
        stored = await b.ups_get(uid)
        assert stored is not None and stored.transaction_uid == won[0].transaction_uid


async def test_a_sqlite_version_3_database_gains_every_ups_table(tmp_path: Path) -> None:
    """Version 4's tables, workitems and subscriptions alike, reach a version 3 database
    (the one upgrade both halves of UPS share), and what it held stays."""
    store = SQLiteStore.in_directory(tmp_path)
    await store.aclose()
    conn = sqlite3.connect(tmp_path / DB_FILENAME)  # as version 3 left it
    for table in ("ups_workitems", "ups_subscriptions", "ups_global_subscriptions"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DROP INDEX deliveries_destination")
    conn.execute("INSERT INTO mpps VALUES ('1.9', 'IN PROGRESS', '{}', 'CT1', 1.0, 1.0)")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    store = SQLiteStore.in_directory(tmp_path)
    try:
        assert store.db.upgraded_from == 3
        assert SCHEMA_VERSION == 4
        assert await store.mpps_get("1.9") is not None  # kept
        assert await store.ups_create(_row("1.1"), time.time())
        assert await _uids(store, WorkitemQuery()) == ["1.1"]
        await store.ups_subscribe("A", "1.1", False)
        assert await store.ups_subscribers("1.1") == [("A", False)]
        await store.ups_subscribe_global(UPSGlobalSubscription(aet="B", deletion_lock=True), [])
        assert [g.aet for g in await store.ups_global_subscriptions()] == ["B"]
    finally:
        await store.aclose()
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    try:
        names = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"ups_workitems", "ups_workitems_state", "ups_workitems_patient",
                "ups_subscriptions", "ups_subscriptions_aet", "ups_global_subscriptions",
                "deliveries_destination"} <= names
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    finally:
        conn.close()


async def test_a_postgresql_version_2_database_gains_every_ups_table(
        pg_cluster: PGCluster) -> None:
    """Step 3 (UPS) on a database made before it: what it held stays."""
    store = open_store(pg_cluster.new_database())
    assert isinstance(store, PostgreSQLStore)
    try:
        await store.db.run(lambda conn: conn.execute(
            "DROP TABLE ups_workitems, ups_subscriptions, ups_global_subscriptions; "
            "DROP INDEX deliveries_destination; UPDATE schema_version SET version = 2; "
            "INSERT INTO mpps VALUES ('1.9', 'IN PROGRESS', '{}', 'CT1', 1.0, 1.0)"))
        assert await store.db.run(prepare) == 2
        assert PG_VERSION == 4  # then step 4 (the quota charge's function) too
        assert await store.mpps_get("1.9") is not None  # kept
        assert await store.ups_create(_row("1.1"), time.time())
        await store.ups_subscribe("A", "1.1", True)
        assert await store.ups_locked() == {"1.1"}
    finally:
        await store.aclose()


async def test_purge_honours_age_state_and_deletion_locks(stores: OpenStore) -> None:
    """PS3.4 CC.2.1.3: only final workitems past their keeping, held by no deletion
    lock, go, with their subscriptions (services/ups/retention.py runs this)."""
    store, day, now = stores(), 86400.0, 1_900_000_000.0
    for uid, state, age in (("1.1", "COMPLETED", 8), ("1.2", "CANCELED", 8),
                            ("1.3", "CANCELED", 8), ("1.4", "COMPLETED", 1),
                            ("1.5", "IN PROGRESS", 30)):
        assert await store.ups_create(_row(uid, state), now - age * day)
    await store.ups_subscribe("RIS", "1.2", True)  # locked
    await store.ups_subscribe("RIS", "1.3", False)
    assert await store.ups_purge(now - 7 * day, 500) == 2
    assert [await store.ups_get(u) is not None for u in ("1.1", "1.2", "1.3", "1.4", "1.5")
            ] == [False, True, False, True, True]
    assert await store.ups_subscribers("1.3") == []  # its subscription went with it
    assert await store.ups_unsubscribe("RIS", "1.2")  # the lock released
    assert await store.ups_purge(now - 7 * day, 1) == 1
    assert await store.ups_get("1.2") is None

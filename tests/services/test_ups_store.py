"""The UPS workitem store (SQLite): atomic read-change-write, the columns a C-FIND
narrows by, and the upgrade of a version 3 database that had no UPS tables."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from aiodimse.store.interface import UPSGlobalSubscription, WorkitemQuery, WorkitemRow
from aiodimse.store.sqlite import DB_FILENAME, SCHEMA_VERSION, SQLiteStore


def _row(uid: str, state: str = "SCHEDULED", start: str = "20260101100000",
         patient: str = "P1") -> WorkitemRow:
    return WorkitemRow(sop_instance_uid=uid, state=state, transaction_uid=None,
                       dataset=b"", patient_id=patient, scheduled_start=start,
                       worklist_label="AI")


async def _uids(store: SQLiteStore, query: WorkitemQuery) -> list[str]:
    return [r.sop_instance_uid async for r in store.ups_match(query)]


async def test_create_get_update_and_narrowing(tmp_path: Path) -> None:
    store = SQLiteStore.in_directory(tmp_path)
    try:
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
    finally:
        await store.aclose()


async def test_many_workitems_come_in_batches(tmp_path: Path) -> None:
    store = SQLiteStore.in_directory(tmp_path)
    try:
        for n in range(100):  # past FIRST_BATCH: several batches, none lost or doubled
            await store.ups_create(_row(f"1.{n}"), time.time())
        assert await _uids(store, WorkitemQuery()) == [f"1.{n}" for n in range(100)]
    finally:
        await store.aclose()


async def test_a_version_3_database_gains_every_ups_table(tmp_path: Path) -> None:
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

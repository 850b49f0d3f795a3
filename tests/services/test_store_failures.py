"""A full disk (issue 18): the real error is reported and the request fails with 0x0213.

On bf678e1 SQLite's own rollback after SQLITE_FULL made ``transaction()``'s ROLLBACK
raise "cannot rollback - no transaction is active", which hid the cause. The disk is
filled here by ``PRAGMA max_page_count`` (SQLite's real SQLITE_FULL, no root needed)
and by injecting the error where SQLite reports it.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE
from aiodimse.services import MPPS, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
from aiodimse.services.store_status import store_comment, store_log_level, store_status
from aiodimse.store import MPPSRow, StoreError
from aiodimse.store.sqlite import SQLiteDatabase, is_full

from ._helpers import commit_request, running_scp

CT = "1.2.840.10008.5.1.4.1.1.2"


def _fill(store: SQLiteDatabase) -> None:
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages + 1}")


def _row(uid: str) -> MPPSRow:
    return MPPSRow(sop_instance_uid=uid, status="IN PROGRESS", dataset="x" * 20_000,
                   calling_aet="CT1")


def test_a_full_database_raises_its_own_error(tmp_path: Path) -> None:
    store = SQLiteDatabase.in_directory(tmp_path)
    _fill(store)
    with pytest.raises(sqlite3.OperationalError) as caught:
        for i in range(50):
            store.mpps_create(_row(f"1.{i}"), 1.0)
    assert "full" in str(caught.value) and "rollback" not in str(caught.value)
    assert is_full(caught.value)
    assert not store._conn.in_transaction  # and the store still answers
    assert store.mpps_get("1.999") is None
    store.close()


class _FailingCommit:
    """The connection, but COMMIT fails as on a disk that fills while writing the WAL."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_failed_commit_is_rolled_back_and_reported(tmp_path: Path) -> None:
    store = SQLiteDatabase.in_directory(tmp_path)
    real = store._conn
    store._conn = _FailingCommit(real)  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        store.mpps_create(_row("1.1"), 1.0)
    assert not real.in_transaction
    store._conn = real
    assert store.mpps_get("1.1") is None  # nothing half-written
    store.close()


def test_is_full() -> None:
    assert is_full(sqlite3.OperationalError("database or disk is full"))
    assert not is_full(sqlite3.OperationalError("database is locked"))
    assert not is_full(sqlite3.DatabaseError("file is not a database"))


def test_the_status_for_a_store_error() -> None:
    """Full: 0x0213 for the N-services, 0xA700 for C-STORE/FIND/GET/MOVE; else 0x0110."""
    full, broken = StoreError("x", full=True), StoreError("x")
    for n_service in (0x0140, 0x0120, 0x0110, 0x0130, 0x0150, 0x0100, 0x0030):
        assert (store_status(full, n_service), store_status(broken, n_service)) == (
            0x0213, 0x0110)
    for c_service in (0x0001, 0x0020, 0x0010, 0x0021):
        assert (store_status(full, c_service), store_status(broken, c_service)) == (
            0xA700, 0x0110)


def test_an_unreachable_store_is_out_of_resources() -> None:
    """A database that cannot be reached (issue 23): out of resources, as full; logged
    at DEBUG by the services (the backend logs the outage once)."""
    down = StoreError("x", unavailable=True)
    assert [store_status(down, c) for c in (0x0140, 0x0130, 0x0001, 0x0021)] == [
        0x0213, 0x0213, 0xA700, 0xA700]
    assert (store_log_level(down), store_log_level(StoreError("x"))) == (
        logging.DEBUG, logging.ERROR)
    assert store_comment(down, "MPPS") == "the MPPS store is unavailable"


async def test_services_answer_0213_on_a_full_disk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running_scp(tmp_path) as scp:
        await scp.store.call(_fill, scp.store.db)
        ae = AE("CT1")
        ae.add_requested_context(MPPS)
        ae.add_requested_context(STORAGE_COMMITMENT)
        async with ae.associate("127.0.0.1", scp.server.port, ae_title="ARCHIVE") as assoc:
            statuses = set()
            for _ in range(10):
                attrs = Dataset()
                attrs.PerformedProcedureStepStatus = "IN PROGRESS"
                attrs.PatientComments = "c" * 10_000
                status, _ = await assoc.send_n_create(attrs, MPPS, str(generate_uid()))
                statuses.add(int(status.Status))
            assert 0x0213 in statuses and statuses <= {0, 0x0213}
            request = commit_request(str(generate_uid()),
                                     [(CT, f"1.2.3.{i}") for i in range(400)])
            status, _ = await assoc.send_n_action(request, 1, STORAGE_COMMITMENT,
                                                  STORAGE_COMMITMENT_INSTANCE)
            assert status.Status == 0x0213
    text = caplog.text
    assert "database or disk is full" in text and "cannot rollback" not in text

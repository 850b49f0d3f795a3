"""The store through its interface (SQLite behind it): the instance index, the delivery
queue's leases between workers, its order per group, restart semantics, the schema
upgrade from version 0, and ``open_store``'s choice of backend."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import aiodimse.store as package
from aiodimse.store import (
    DB_FILENAME,
    Commitment,
    Delivery,
    StoreError,
    backends,
    database_problem,
    index_paths,
    open_store,
)
from aiodimse.store.index import ScanReport
from aiodimse.store.sqlite import SCHEMA_VERSION, SQLiteStore

CT = "1.2.840.10008.5.1.4.1.1.2"
STGCMT = "1.2.840.10008.1.20.1"
STGCMT_INSTANCE = "1.2.840.10008.1.20.1.1"


def _commitment(uid: str, now: float = 100.0) -> tuple[Commitment, Delivery]:
    refs = ((CT, "1.2"),)
    return (Commitment(transaction_uid=uid, calling_aet="CT1", refs=refs, received_at=now),
            Delivery(kind="commitment", key=uid, destination="CT1", sop_class=STGCMT,
                     sop_instance=STGCMT_INSTANCE, payload=json.dumps(refs), created_at=now,
                     deadline=now + 1000, next_attempt=now))


async def test_index_directory(tmp_path: Path) -> None:
    uids = []
    for i in range(3):
        ds = Dataset()
        ds.SOPClassUID = CT
        ds.SOPInstanceUID = uid = str(generate_uid())
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        (tmp_path / "archive" / str(i)).mkdir(parents=True)
        ds.save_as(tmp_path / "archive" / str(i) / "x.dcm", enforce_file_format=True)
        uids.append(uid)
    (tmp_path / "archive" / "notes.txt").write_text("not DICOM")
    store = open_store(tmp_path / "data" / DB_FILENAME)
    try:
        assert await index_paths(store, [tmp_path / "archive"], now=1.0, batch=2) == 3
        assert await store.find_instances([*uids, "9.9"]) == dict.fromkeys(uids, CT)
        again = ScanReport()
        # unchanged files are not read again (tests/services/test_index_rescan.py)
        assert await index_paths(store, [tmp_path / "archive"], now=2.0, report=again) == 0
        assert (again.files, again.unchanged) == (4, 3)
        assert await store.count_instances() == 3
    finally:
        await store.aclose()


def _version_0(path: Path) -> None:
    """A database as aiodimse wrote it before the delivery queue (schema version 0)."""
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE instances (sop_instance_uid TEXT PRIMARY KEY, sop_class_uid TEXT NOT NULL,
            path TEXT, indexed_at REAL NOT NULL);
        CREATE TABLE mpps (sop_instance_uid TEXT PRIMARY KEY, status TEXT NOT NULL,
            dataset TEXT NOT NULL, calling_aet TEXT, created_at REAL NOT NULL,
            updated_at REAL NOT NULL);
        CREATE TABLE commitments (transaction_uid TEXT PRIMARY KEY,
            calling_aet TEXT NOT NULL, refs TEXT NOT NULL, state TEXT NOT NULL,
            received_at REAL NOT NULL, deadline REAL NOT NULL, next_attempt REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_until REAL,
            last_error TEXT, delivered_at REAL, result TEXT);
        CREATE INDEX commitments_due ON commitments (state, next_attempt);
        CREATE TABLE ae_usage (calling_aet TEXT NOT NULL, service TEXT NOT NULL,
            window_start REAL NOT NULL, bytes INTEGER NOT NULL,
            PRIMARY KEY (calling_aet, service));
    """)
    refs = json.dumps([[CT, "1.2.3"]])
    conn.executemany(
        "INSERT INTO commitments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [("2.1", "CT1", refs, "pending", 10.0, 9000.0, 50.0, 3, "old:1:x", 99.0,
          "refused", None, None),
         ("2.2", "MR1", refs, "delivered", 5.0, 9000.0, 5.0, 1, None, None, None, 6.0,
          '{"event_type": 1}')])
    conn.execute("INSERT INTO instances VALUES ('1.2.3', ?, NULL, 1.0)", (CT,))
    conn.commit()
    conn.close()


async def test_a_version_0_database_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    _version_0(path)
    store = open_store(f"sqlite:///{path}")
    try:
        assert isinstance(store, SQLiteStore) and store.db.upgraded_from == 0
        assert await store.commitment_state("2.1") == ("pending", 3, "refused")
        assert await store.commitment_state("2.2") == ("delivered", 1, None)
        assert await store.count_instances() == 1
        assert await store.reset_for_start(now=60.0) == 1
        (item,) = await store.claim_due("new", 60.0, 30.0, 10)
        assert (item.kind, item.key, item.destination, item.sop_class, item.sop_instance,
                item.attempts, item.deadline) == (
            "commitment", "2.1", "CT1", STGCMT, STGCMT_INSTANCE, 3, 9000.0)
        assert json.loads(item.payload) == [[CT, "1.2.3"]]
        # the refs moved to the queue; a reused Transaction UID is still refused
        assert not await store.add_commitment(*_commitment("2.2"))
        assert await store.add_commitment(*_commitment("2.3"))
    finally:
        await store.aclose()
    again = open_store(path)  # opened again: nothing to do
    try:
        assert isinstance(again, SQLiteStore) and again.db.upgraded_from == SCHEMA_VERSION
        assert await again.count_pending() == 2
    finally:
        await again.aclose()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    columns = {r[1] for r in conn.execute("PRAGMA table_info(commitments)")}
    assert columns == {"transaction_uid", "calling_aet", "received_at"}
    conn.close()


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    open_store(path).db.close()  # type: ignore[attr-defined]
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}") as caught:
        open_store(path)
    assert not caught.value.full


def test_open_store_picks_the_backend_by_scheme(tmp_path: Path) -> None:
    assert database_problem("sqlite:///x.db") is None
    assert database_problem(str(tmp_path / "x.db")) is None
    assert database_problem("postgresql://db/aiodimse") is None  # connects when used
    why = database_problem("mssql://db/aiodimse")
    assert why is not None and "unknown database scheme 'mssql'" in why
    with pytest.raises(ValueError, match="unknown database scheme 'mysql'"):
        open_store("mysql://db/x")
    with pytest.raises(StoreError, match="no aiodimse database"):
        open_store(tmp_path / "none" / DB_FILENAME, create=False)
    assert not (tmp_path / "none").exists()


def test_a_second_backend_is_a_module_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module named for its scheme, with ``open_url``, in the store package: found
    by ``open_store`` and the ``database`` check, listed among the known schemes."""
    (tmp_path / "fakedb.py").write_text(
        "OPENED = []\n"
        "def open_url(url, *, create=True):\n"
        "    OPENED.append((url, create))\n"
        "    return OPENED\n")
    (tmp_path / "brokendb.py").write_text("import no_such_driver_here\n"
                                          "def open_url(url, *, create=True): ...\n")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    for name in ("fakedb", "brokendb"):
        monkeypatch.delitem(sys.modules, f"aiodimse.store.{name}", raising=False)
    try:
        assert database_problem("fakedb://host/db") is None
        opened = open_store("FakeDB://host/db", create=False)
        assert opened == [("FakeDB://host/db", False)]
        assert backends() == ["fakedb", "postgresql", "sqlite"]  # not index, brokendb
        why = database_problem("brokendb://x")
        assert why is not None and "the brokendb backend cannot be used" in why
        assert "no_such_driver_here" in why
        assert "known: fakedb://, postgresql://, sqlite://" in why
        for scheme in ("interface", "index", "os", "a-b"):
            why = database_problem(f"{scheme}://x")
            assert why is not None and f"unknown database scheme {scheme!r}" in why
    finally:
        for name in ("fakedb", "brokendb"):
            sys.modules.pop(f"aiodimse.store.{name}", None)

"""The archive index from disk: a database main wrote (schema 2) upgrades in place
and its next scan fills the new attributes; the indexer reads them from files;
files the writer is still writing are passed over."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pydicom.dataset import Dataset

from aiodimse.archive import PATIENT_ROOT_FIND, QueryEngine
from aiodimse.store import DB_FILENAME, index_paths, open_store
from aiodimse.store.index import INCOMING, TEMP_PREFIX, ScanReport
from aiodimse.store.interface import Store
from aiodimse.store.sqlite import SCHEMA_VERSION

from ._data import CT, instance, part10

DUMP_2 = Path(__file__).parents[1] / "cli" / "main_64e6f55.sql"  # schema version 2
OLD_FILE, OLD_BARE = "1.2.826.0.1.3680043.10.1.1", "1.2.826.0.1.3680043.10.1.2"


async def _studies(store: Store, patient_id: str) -> list[tuple[str, str, int]]:
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.PatientID = patient_id
    q.StudyInstanceUID = ""
    q.StudyDate = ""
    q.NumberOfStudyRelatedInstances = ""
    return sorted([(r.StudyInstanceUID, r.StudyDate, int(r.NumberOfStudyRelatedInstances))
                   async for r in QueryEngine(store).find(PATIENT_ROOT_FIND, q)])


async def test_a_version_2_database_from_main_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    conn = sqlite3.connect(path)
    conn.executescript(DUMP_2.read_text())
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
    archive = tmp_path / "archive"
    ds = instance(SOPInstanceUID=OLD_FILE, PatientID="OLD", StudyDate="20230405")
    part10(ds, archive / "a.dcm")
    store = open_store(path)
    try:
        # what main indexed is still there for storage commitment
        assert await store.find_instances([OLD_FILE, OLD_BARE]) == {OLD_FILE: CT, OLD_BARE: CT}
        assert await store.index_complete()
        assert await store.file_stats(["/archive/a.dcm"]) == {}  # read again next scan
        assert await _studies(store, "OLD") == []  # no attributes yet
        report = ScanReport()
        await index_paths(store, [archive], now=2.0, report=report)
        assert report.indexed == 1
        assert await _studies(store, "OLD") == [(ds.StudyInstanceUID, "20230405", 1)]
    finally:
        await store.aclose()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert conn.execute("SELECT count(*) FROM instances").fetchone()[0] == 2
    finally:
        conn.close()
    store = open_store(path)  # opening again changes nothing
    try:
        assert await _studies(store, "OLD") == [(ds.StudyInstanceUID, "20230405", 1)]
    finally:
        await store.aclose()


async def test_the_indexer_fills_the_attributes_and_skips_files_being_written(
        tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    one, two = instance(PatientID="P"), instance(PatientID="P", StudyDate="20240203")
    part10(one, archive / "x" / "1.dcm")
    part10(two, archive / "x" / "2.dcm")
    part10(instance(PatientID="P"), archive / "x" / f"{TEMP_PREFIX}abc")  # being written
    part10(instance(PatientID="P"), archive / INCOMING / "aiodimse-x.dcm.part")  # being received
    store = open_store(tmp_path / DB_FILENAME)
    try:
        report = ScanReport()
        await index_paths(store, [archive], now=1.0, report=report)
        assert (report.files, report.indexed) == (2, 2)
        assert await _studies(store, "P") == sorted([
            (one.StudyInstanceUID, "20240102", 1), (two.StudyInstanceUID, "20240203", 1)])
        # a file rewritten with another instance: the old one is forgotten, its study too
        three = instance(PatientID="P")
        part10(three, archive / "x" / "1.dcm")
        await index_paths(store, [archive], now=2.0)
        assert [s[0] for s in await _studies(store, "P")] == sorted(
            [two.StudyInstanceUID, three.StudyInstanceUID])
        assert await store.find_instances([one.SOPInstanceUID]) == {}
    finally:
        await store.aclose()

"""Indexing again: files indexed before and unchanged (path, size, mtime) are not read
again; a changed file is, and a file that now holds another instance stops vouching
for the old one."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import aiodimse.store.index as index_module
from aiodimse.store import DB_FILENAME, Store, index_paths, open_store
from aiodimse.store.index import ScanReport
from aiodimse.store.sqlite import SCHEMA_VERSION

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


def _write(path: Path, sop_class: str = CT, uid: str | None = None) -> str:
    uid = uid or str(generate_uid())
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return uid


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the indexer reads, in order."""
    seen: list[str] = []
    real = index_module._read

    def counting(path: Path) -> object:
        seen.append(path.name)
        return real(path)

    monkeypatch.setattr(index_module, "_read", counting)
    return seen


async def _index(store: Store, archive: Path) -> ScanReport:
    report = ScanReport()
    await index_paths(store, [archive], now=1.0, batch=3, report=report)
    return report


async def test_unchanged_files_are_not_read_again(tmp_path: Path, reads: list[str]) -> None:
    archive = tmp_path / "archive"
    uids = [_write(archive / f"{i}.dcm") for i in range(7)]
    store = open_store(tmp_path / DB_FILENAME)
    try:
        first = await _index(store, archive)
        assert (first.indexed, first.unchanged, len(reads)) == (7, 0, 7)
        reads.clear()
        second = await _index(store, archive)
        assert reads == []  # a second start reads no unchanged file
        assert (second.files, second.indexed, second.unchanged) == (7, 0, 7)
        assert second.summary() == "indexed 0, unchanged 7, skipped 0"
        assert await store.find_instances(uids) == dict.fromkeys(uids, CT)
    finally:
        await store.aclose()


async def test_a_changed_or_new_file_is_read(tmp_path: Path, reads: list[str]) -> None:
    archive = tmp_path / "archive"
    kept = _write(archive / "a.dcm")
    old = _write(archive / "b.dcm")
    store = open_store(tmp_path / DB_FILENAME)
    try:
        await _index(store, archive)
        reads.clear()
        new = _write(archive / "b.dcm", MR)  # another instance in the same file
        st = os.stat(archive / "b.dcm")  # the same size would do: the mtime differs
        os.utime(archive / "b.dcm", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        added = _write(archive / "c.dcm")
        report = await _index(store, archive)
        assert sorted(reads) == ["b.dcm", "c.dcm"]
        assert (report.indexed, report.unchanged) == (2, 1)
        assert await store.find_instances([kept, old, new, added]) == {
            kept: CT, new: MR, added: CT}
        reads.clear()
        touched = archive / "a.dcm"  # only the mtime changed: read again
        st = os.stat(touched)
        os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        await _index(store, archive)
        assert reads == ["a.dcm"]
    finally:
        await store.aclose()


async def test_files_that_are_not_instances_are_read_each_time(
    tmp_path: Path, reads: list[str]
) -> None:
    archive = tmp_path / "archive"
    _write(archive / "a.dcm")
    (archive / "notes.txt").write_text("not DICOM")
    store = open_store(tmp_path / DB_FILENAME)
    try:
        await _index(store, archive)
        reads.clear()
        quiet = ScanReport(quiet=True)
        await index_paths(store, [archive], now=2.0, report=quiet)
        assert reads == ["notes.txt"]
        assert quiet.skipped == {"not DICOM": [str((archive / "notes.txt").resolve())]}
    finally:
        await store.aclose()


async def test_index_complete_flag(tmp_path: Path) -> None:
    store = open_store(tmp_path / DB_FILENAME)
    try:
        assert await store.index_complete()  # never set: complete
        await store.set_index_complete(False)
        assert not await store.index_complete()
        await store.set_index_complete(True)
        assert await store.index_complete()
    finally:
        await store.aclose()


async def test_a_version_1_database_is_upgraded(tmp_path: Path, reads: list[str]) -> None:
    """main's schema (version 1, tests/cli/main_9d5ba1d.sql) gains the file table empty:
    what it indexed stays, its first scan reads each file once, the next none."""
    path = tmp_path / DB_FILENAME
    conn = sqlite3.connect(path)
    conn.executescript((Path(__file__).parents[1] / "cli" / "main_9d5ba1d.sql").read_text())
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    store = open_store(path)
    try:
        assert await store.find_instances(["1.2.826.0.1.3680043.10.1.1"]) == {
            "1.2.826.0.1.3680043.10.1.1": CT}
        assert await store.index_complete()
        assert await store.count_pending() == 1
        archive = tmp_path / "archive"
        uid = _write(archive / "a.dcm")
        await _index(store, archive)
        await _index(store, archive)
        assert reads == ["a.dcm"]
        assert await store.find_instances([uid]) == {uid: CT}
    finally:
        await store.aclose()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    finally:
        conn.close()

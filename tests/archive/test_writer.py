"""The archive writer: atomic, laid out by UIDs, indexed at once, duplicates per
policy, out of space answered full with nothing left behind; on each backend's
index (``store_url``: SQLite and PostgreSQL)."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from aiodimse.archive import STUDY_ROOT_FIND, QueryEngine
from aiodimse.archive import writer as writer_module
from aiodimse.archive.writer import ArchiveWriter, InvalidInstance, Stored
from aiodimse.store import StoreError, open_store
from aiodimse.store.interface import Store
from aiodimse.store.records import InstanceRecord

from ..store.conftest import store_url  # noqa: F401  (the fixture: one per backend)
from ._data import CT, EXPLICIT, MR, encode, instance, part10


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:  # noqa: F811
    s = open_store(store_url)
    yield s
    await s.aclose()


def _files(root: Path) -> list[str]:
    """Every file under ``root``, relative (temporary files included)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def _names(store: Store, study: str) -> list[str]:
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = study
    q.PatientName = ""
    return [str(r.PatientName) async for r in QueryEngine(store).find(STUDY_ROOT_FIND, q)]


async def _store(writer: ArchiveWriter, ds: Dataset) -> Stored:
    return await writer.store_bytes(encode(ds), EXPLICIT, sop_class_uid=ds.SOPClassUID,
                                    sop_instance_uid=ds.SOPInstanceUID)


async def test_bytes_are_written_in_the_layout_and_indexed_at_once(
        tmp_path: Path, store: Store) -> None:
    root = tmp_path / "archive"
    ds = instance()
    stored = await ArchiveWriter(root, store).store_bytes(
        encode(ds), EXPLICIT, sop_class_uid=CT, sop_instance_uid=ds.SOPInstanceUID,
        source_aet="MODALITY")
    want = f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
    assert _files(root) == [want]  # .incoming holds nothing
    assert stored.path == str(root.resolve() / want)
    assert (stored.duplicate, stored.written) == (False, True)
    back = dcmread(stored.path)
    assert back.file_meta.TransferSyntaxUID == EXPLICIT
    assert back.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert back.file_meta.SourceApplicationEntityTitle == "MODALITY"
    assert back.PixelData == ds.PixelData and back.PatientName == "Doe^Jane"
    assert await store.find_instances([ds.SOPInstanceUID]) == {ds.SOPInstanceUID: CT}
    assert await _names(store, ds.StudyInstanceUID) == ["Doe^Jane"]


async def test_a_received_file_is_moved_into_place_not_copied(
        tmp_path: Path, store: Store) -> None:
    writer = ArchiveWriter(tmp_path / "archive", store)
    ds = instance()
    incoming = writer.begin(CT, ds.SOPInstanceUID, EXPLICIT)
    assert incoming.path.parent.name == ".incoming"
    data = encode(ds)
    for at in range(0, len(data), 100):  # as fragments arrive
        incoming.write(data[at:at + 100])
    inode = os.stat(incoming.path).st_ino
    stored = await writer.finish(incoming)
    assert os.stat(stored.path).st_ino == inode
    assert not incoming.path.exists()
    assert dcmread(stored.path).SOPInstanceUID == ds.SOPInstanceUID


async def test_a_part10_file_is_moved_or_copied(tmp_path: Path, store: Store) -> None:
    writer = ArchiveWriter(tmp_path / "archive", store)
    moved, copied = instance(), instance()
    src = part10(moved, tmp_path / "in" / "a.dcm")
    inode = src.stat().st_ino
    stored = await writer.store_file(src, sop_class_uid=CT,
                                     sop_instance_uid=moved.SOPInstanceUID)
    assert not src.exists() and os.stat(stored.path).st_ino == inode
    src = part10(copied, tmp_path / "in" / "b.dcm")
    stored = await writer.store_file(src, move=False)
    assert src.exists() and os.stat(stored.path).st_ino != src.stat().st_ino
    assert await store.count_instances() == 2


async def test_a_bare_data_set_file_gets_its_meta(tmp_path: Path, store: Store) -> None:
    ds = instance()
    src = tmp_path / "bare"
    src.write_bytes(encode(ds))
    stored = await ArchiveWriter(tmp_path / "archive", store).store_file(
        src, transfer_syntax=EXPLICIT, sop_class_uid=CT, sop_instance_uid=ds.SOPInstanceUID)
    assert not src.exists()
    assert dcmread(stored.path).file_meta.MediaStorageSOPClassUID == CT


@pytest.mark.parametrize(("change", "status"), [
    ({"StudyInstanceUID": "../../../etc"}, 0xA900),
    ({"SeriesInstanceUID": "1.2.03"}, 0xA900),
    ({"SeriesInstanceUID": None}, 0xA900),
    ({"SOPClassUID": MR}, 0xA900),  # the request said CT
    ({"SOPInstanceUID": "1.2.3.4"}, 0xC000),  # the request said another
])
async def test_a_data_set_that_cannot_be_stored_leaves_nothing(
        tmp_path: Path, store: Store, change: dict[str, object], status: int) -> None:
    root = tmp_path / "archive"
    ds = instance()
    expected = str(ds.SOPInstanceUID)
    ds = instance(**{"SOPInstanceUID": expected, **change})
    with pytest.raises(InvalidInstance) as caught:
        await ArchiveWriter(root, store).store_bytes(
            encode(ds), EXPLICIT, sop_class_uid=CT, sop_instance_uid=expected)
    assert caught.value.status == status
    assert _files(root) == []
    assert not (tmp_path / "etc").exists()
    assert await store.count_instances() == 0


async def test_bytes_that_do_not_parse_are_refused(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "archive"
    with pytest.raises(InvalidInstance) as caught:
        await ArchiveWriter(root, store).store_bytes(
            b"\x08\x00\x18\x00UI\xff\xff1.2", EXPLICIT, sop_class_uid=CT,
            sop_instance_uid="1.2.3")
    assert caught.value.status == 0xC000
    assert _files(root) == []


async def test_a_duplicate_replaces_and_is_indexed_again(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "archive"
    writer = ArchiveWriter(root, store)
    first = instance()
    await _store(writer, first)
    again = instance(SOPInstanceUID=first.SOPInstanceUID,
                     StudyInstanceUID=first.StudyInstanceUID,
                     SeriesInstanceUID=first.SeriesInstanceUID, PatientName="Roe^Richard")
    stored = await _store(writer, again)
    assert (stored.duplicate, stored.written) == (True, True)
    assert len(_files(root)) == 1
    assert dcmread(stored.path).PatientName == "Roe^Richard"
    assert await _names(store, first.StudyInstanceUID) == ["Roe^Richard"]


async def test_a_duplicate_moved_to_another_series_leaves_no_old_file(
        tmp_path: Path, store: Store) -> None:
    root = tmp_path / "archive"
    writer = ArchiveWriter(root, store)
    first = instance()
    old = await writer.store_bytes(encode(first), EXPLICIT, sop_class_uid=CT,
                                   sop_instance_uid=first.SOPInstanceUID)
    moved = instance(SOPInstanceUID=first.SOPInstanceUID)
    new = await _store(writer, moved)
    assert not Path(old.path).exists() and Path(new.path).exists()
    assert await _names(store, first.StudyInstanceUID) == []  # the old study is gone
    assert await _names(store, moved.StudyInstanceUID) == ["Doe^Jane"]


async def test_keep_keeps_the_first(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "archive"
    writer = ArchiveWriter(root, store, duplicates="keep")
    first = instance()
    kept = await _store(writer, first)
    stored = await _store(writer, instance(
        SOPInstanceUID=first.SOPInstanceUID, StudyInstanceUID=first.StudyInstanceUID,
        SeriesInstanceUID=first.SeriesInstanceUID, PatientName="Roe^Richard"))
    assert (stored.duplicate, stored.written) == (True, False)
    assert stored.path == kept.path
    assert len(_files(root)) == 1
    assert dcmread(stored.path).PatientName == "Doe^Jane"


async def test_out_of_space_while_receiving(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "archive"
    writer = ArchiveWriter(root, store)
    ds = instance()
    incoming = writer.begin(CT, ds.SOPInstanceUID, EXPLICIT)
    incoming.file.close()
    incoming.file = open("/dev/full", "wb", buffering=0)  # noqa: SIM115 (ENOSPC on write)
    with pytest.raises(StoreError) as caught:
        incoming.write(encode(ds))
    assert caught.value.full
    assert _files(root) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
async def test_out_of_space_when_placing(tmp_path: Path, store: Store,
                                         monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    root = tmp_path / "archive"
    writer = ArchiveWriter(root, store)

    def replace(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(StoreError) as caught:
        await _store(writer, instance())
    assert caught.value.full == (code != errno.EIO)
    assert _files(root) == []
    assert await store.count_instances() == 0


@pytest.mark.parametrize("duplicates", ["replace", "keep"])
async def test_an_index_failure_removes_the_new_file(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch,
        duplicates: Literal["replace", "keep"]) -> None:
    """(replace indexes by ``index_instance``, keep by ``add_records``.)"""
    root = tmp_path / "archive"

    async def full(records: object, now: float) -> int:
        raise StoreError("database or disk is full", full=True)

    monkeypatch.setattr(store, "add_records", full)
    monkeypatch.setattr(store, "index_instance", full)
    with pytest.raises(StoreError):
        await _store(ArchiveWriter(root, store, duplicates=duplicates), instance())
    assert _files(root) == []


async def test_a_failed_indexing_removes_the_new_file_and_keeps_an_old_one(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """(One index call both indexes the instance and says where it was.)"""
    root = tmp_path / "archive"
    writer = ArchiveWriter(root, store)
    held = instance()
    first = await _store(writer, held)

    async def broken(record: InstanceRecord, now: float) -> str | None:
        raise StoreError("disk I/O error")

    monkeypatch.setattr(store, "index_instance", broken)
    with pytest.raises(StoreError):
        await _store(writer, instance())
    assert _files(root) == [str(Path(first.path).relative_to(root))]
    with pytest.raises(StoreError):  # the same instance again: its file is the old one's
        await _store(writer, held)
    assert Path(first.path).is_file()


@pytest.mark.parametrize("fsync", [True, False])
async def test_fsync_policy(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch,
                            fsync: bool) -> None:
    synced: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    await _store(ArchiveWriter(tmp_path / "archive", store, fsync=fsync), instance())
    # the file, its series folder, and the entries of the two folders made for it
    assert len(synced) == (4 if fsync else 0)


async def _receive(writer: ArchiveWriter, ds: Dataset, tmp_path: Path, start: bytes | None = None
                   ) -> Stored:
    """As the Storage SCP hands over a streamed C-STORE: the file, and its data set's
    first bytes from memory (``start``: the first 4 kB, as the library keeps)."""
    path = part10(ds, tmp_path / "incoming" / f"{ds.SOPInstanceUID}.part")
    return await writer.store_received(
        path, encode(ds)[:4096] if start is None else start, EXPLICIT,
        sop_class_uid=CT, sop_instance_uid=ds.SOPInstanceUID)


@pytest.mark.parametrize("fsync", [True, False])
async def test_a_received_instance_is_indexed_from_its_first_bytes(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch, fsync: bool) -> None:
    """No file read back; with ``fsync=False`` and its series folder there, no thread
    step but the index's; with ``fsync=True`` the file and its folder still synced."""
    root = tmp_path / "archive"
    writer = ArchiveWriter(root, store, fsync=fsync)
    first = instance()
    await _receive(writer, first, tmp_path)

    def no_read(path: object) -> None:
        raise AssertionError("the file was read back")

    steps: list[str] = []
    real_thread = writer_module.asyncio.to_thread

    async def to_thread(func: Any, /, *args: Any) -> Any:
        steps.append(func.__name__)
        return await real_thread(func, *args)

    synced: list[int] = []
    real_fsync = os.fsync

    def counting(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(writer_module, "_read", no_read)
    monkeypatch.setattr(writer_module.asyncio, "to_thread", to_thread)
    monkeypatch.setattr(os, "fsync", counting)
    second = instance(StudyInstanceUID=first.StudyInstanceUID,
                      SeriesInstanceUID=first.SeriesInstanceUID, PatientName="Roe^Jim")
    stored = await _receive(writer, second, tmp_path)
    assert steps == (["_exists_and_place"] if fsync else [])
    assert len(synced) == (2 if fsync else 0)  # the file, its series folder
    assert Path(stored.path) == root.resolve() / first.StudyInstanceUID / \
        first.SeriesInstanceUID / f"{second.SOPInstanceUID}.dcm"
    assert dcmread(stored.path).SOPInstanceUID == second.SOPInstanceUID
    assert await _names(store, first.StudyInstanceUID) == ["Roe^Jim"]


async def test_a_received_instance_whose_first_bytes_fall_short_is_read_from_its_file(
        tmp_path: Path, store: Store) -> None:
    root = tmp_path / "archive"
    writer = ArchiveWriter(root, store, fsync=False)
    ds = instance(PatientName="Doe^Cut")
    stored = await _receive(writer, ds, tmp_path, start=encode(ds)[:40])
    assert await _names(store, ds.StudyInstanceUID) == ["Doe^Cut"]
    assert _files(root) == [str(Path(stored.path).relative_to(root))]

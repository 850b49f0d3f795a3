"""StorageSCP and QueryRetrieveSCP in process: out of space, refusals, cancel, failed
sub-operations (the end-to-end paths are in tests/cli/test_serve_archive.py)."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from aiodimse import AE, Server, evt
from aiodimse.datasets import encode_dataset
from aiodimse.dimse.messages import CStoreRQ
from aiodimse.presentation import build_role
from aiodimse.scu import _Command
from aiodimse.services.base import ServiceSet
from aiodimse.services.delivery import Peer
from aiodimse.services.query_retrieve import QueryRetrieveSCP
from aiodimse.services.storage import STALE_AFTER, StorageSCP
from aiodimse.store.sqlite import SQLiteStore

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


@dataclass
class Archive:
    server: Server
    store: SQLiteStore
    storage: StorageSCP
    root: Path

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())


@asynccontextmanager
async def archive(tmp_path: Path, peers: dict[str, Peer] | None = None
                  ) -> AsyncIterator[Archive]:
    store = SQLiteStore.in_directory(tmp_path)
    ae = AE("ARCHIVE")
    ae.dimse_timeout = ae.acse_timeout = 10
    storage = StorageSCP(store, tmp_path / "archive", fsync=False)
    storage.configure(ae)
    services = ServiceSet([storage, QueryRetrieveSCP(store, peers, retrieve_aet="ARCHIVE")])
    server = await services.start_server(ae, ("127.0.0.1", 0))
    try:
        yield Archive(server, store, storage, tmp_path / "archive")
    finally:
        await services.shutdown(server, 1.0)
        await store.aclose()


def instance(study: str, series: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientID = "P1"
    ds.PatientName = "DOE^JOHN"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def scu(*contexts: str) -> AE:
    ae = AE("SCU")
    ae.dimse_timeout = ae.acse_timeout = 10
    for uid in (CT, *contexts):
        ae.add_requested_context(uid)
    return ae


async def test_out_of_space_is_a700_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.replace

    def full(src: Any, dst: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async with archive(tmp_path) as arc:
        async with scu().associate("127.0.0.1", arc.server.port) as assoc:
            monkeypatch.setattr(os, "replace", full)
            first = instance(str(generate_uid()), str(generate_uid()))
            status = await assoc.send_c_store(first)
            assert status.Status == 0xA700
            assert "full" in status.ErrorComment
            assert arc.files() == []  # not in place, nor left in .incoming
            assert await arc.store.find_instances([str(first.SOPInstanceUID)]) == {}
            monkeypatch.setattr(os, "replace", real)
            assert (await assoc.send_c_store(first)).Status == 0  # the association kept
        assert [p.name for p in arc.files()] == [f"{first.SOPInstanceUID}.dcm"]


async def test_a_data_set_that_does_not_parse_is_c000(tmp_path: Path) -> None:
    async with archive(tmp_path) as arc:
        async with scu().associate("127.0.0.1", arc.server.port) as assoc:
            uid = str(generate_uid())
            command = _Command(lambda i: CStoreRQ(
                MessageID=i, AffectedSOPClassUID=CT, AffectedSOPInstanceUID=uid, Priority=0))
            ctx = assoc._store_context(CT, ExplicitVRLittleEndian)[0]
            received = await assoc._request(ctx, command, None, b"\x08\x00\x16\x00UI\xff\xff")
            assert received.message.Status == 0xC000
        assert arc.files() == []


async def test_c_find_cancel_stops_the_matches(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    async with archive(tmp_path) as arc:
        for _ in range(20):
            ds = instance(str(generate_uid()), str(generate_uid()))
            await arc.storage.writer.store_bytes(
                encode_dataset(ds, ExplicitVRLittleEndian), ExplicitVRLittleEndian,
                sop_class_uid=CT, sop_instance_uid=str(ds.SOPInstanceUID))
        match = arc.store.match
        pulled = 0

        async def slow(query: Any) -> AsyncIterator[Any]:
            nonlocal pulled
            async for row in match(query):
                pulled += 1
                await asyncio.sleep(0.05)
                yield row

        monkeypatch.setattr(arc.store, "match", slow)
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        async with scu(STUDY_FIND).associate("127.0.0.1", arc.server.port) as assoc:
            responses = assoc.send_c_find(query, STUDY_FIND)
            statuses = []
            async for status, _ in responses:
                statuses.append(int(status.Status))
                if len(statuses) == 1:
                    assert responses.message_id is not None
                    assoc.send_c_cancel(responses.message_id)
            assert statuses[0] == 0xFF00 and statuses[-1] == 0xFE00
            assert len(statuses) < 20 and pulled < 20


async def test_retrieve_refusals_and_a_missing_file(tmp_path: Path) -> None:
    async with archive(tmp_path, {"SCU": Peer(host="127.0.0.1", port=1)}) as arc:
        study, series = str(generate_uid()), str(generate_uid())
        kept = instance(study, series)
        gone = instance(study, series)
        for ds in (kept, gone):
            stored = await arc.storage.writer.store_bytes(
                encode_dataset(ds, ExplicitVRLittleEndian), ExplicitVRLittleEndian,
                sop_class_uid=CT, sop_instance_uid=str(ds.SOPInstanceUID))
        os.unlink(stored.path)  # the file of ``gone`` is lost
        received: list[str] = []

        async def on_store(event: Any) -> int:
            received.append(str(event.dataset.SOPInstanceUID))
            return 0

        bad = Dataset()
        bad.QueryRetrieveLevel = "STUDY"  # no Study Instance UID: not a retrieval
        good = Dataset()
        good.QueryRetrieveLevel = "STUDY"
        good.StudyInstanceUID = study
        async with scu(STUDY_GET, STUDY_MOVE).associate(
                "127.0.0.1", arc.server.port, ext_neg=[build_role(CT, scp_role=True)],
                evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
            assert [int(s.Status) async for s, _ in assoc.send_c_get(bad, STUDY_GET)] == [
                0xA900]
            assert [int(s.Status) async for s, _ in assoc.send_c_move(bad, "SCU", STUDY_MOVE)
                    ] == [0xA900]
            results = [(s, i) async for s, i in assoc.send_c_get(good, STUDY_GET)]
            status, failed = results[-1]
            assert int(status.Status) == 0xB000
            assert int(status.NumberOfCompletedSuboperations) == 1
            assert int(status.NumberOfFailedSuboperations) == 1
            assert failed is not None
            assert failed["FailedSOPInstanceUIDList"].VM == 1
            assert failed.FailedSOPInstanceUIDList == str(gone.SOPInstanceUID)
        assert received == [str(kept.SOPInstanceUID)]


async def test_start_removes_only_stale_partial_files(tmp_path: Path) -> None:
    incoming = tmp_path / "archive" / ".incoming"
    incoming.mkdir(parents=True)
    old, fresh = incoming / "aiodimse-old.dcm.part", incoming / "aiodimse-new.dcm.part"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"being received")
    an_hour_ago = time.time() - STALE_AFTER - 60
    os.utime(old, (an_hour_ago, an_hour_ago))
    async with archive(tmp_path):
        assert sorted(p.name for p in incoming.iterdir()) == [fresh.name]

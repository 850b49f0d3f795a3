"""C-FIND, C-GET and C-MOVE with real peers: pynetdicom in both roles, DCMTK's
findscu, getscu and movescu against our SCP (files in temporary folders)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pynetdicom
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from aiodimse import AE, Event, build_role, evt

from ..aio._helpers import VERIFICATION, bounded, ds_of, serving
from ..dcmtk_tools import dcmtk, storescp
from ..dcmtk_tools import run_program as run
from .test_pynetdicom import _pn_ae, in_thread, pn_server

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
PATIENT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
QR = (VERIFICATION, STUDY_FIND, STUDY_MOVE, STUDY_GET, PATIENT_FIND, PATIENT_MOVE, PATIENT_GET)


def instances(count: int) -> list[Dataset]:
    out = []
    for n in range(count):
        ds = ds_of(SOPClassUID=CT, SOPInstanceUID=generate_uid(), PatientID="PID1",
                   PatientName="Test^Query", StudyInstanceUID="1.2.3.4", Modality="CT",
                   InstanceNumber=n + 1)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CT
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        out.append(ds)
    return out


def matches(count: int) -> list[Dataset]:
    return [ds_of(QueryRetrieveLevel="STUDY", PatientID=f"PID{n}", StudyInstanceUID=f"1.2.3.{n}")
            for n in range(count)]


def our_qr_scp(destinations: dict[str, tuple[str, int]], data: list[Dataset],
               found: list[Dataset]) -> tuple[AE, list[Any]]:
    """Our Q/R SCP: FIND yields ``found``, GET/MOVE send ``data``."""
    ae = AE("OUR_QR")
    for uid in QR:
        ae.add_supported_context(uid)
    ae.add_supported_context(CT, scu_role=True, scp_role=True)  # C-GET's storage SCP role
    ae.add_requested_context(CT)  # C-MOVE's sub-association

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        assert event.identifier.QueryRetrieveLevel == "STUDY"
        for ds in found:
            yield 0xFF00, ds

    async def on_get(event: Event) -> AsyncIterator[Any]:
        yield len(data)
        for ds in data:
            yield 0xFF00, ds

    async def on_move(event: Event) -> AsyncIterator[Any]:
        yield destinations.get(event.move_destination, (None, None))
        yield len(data)
        for ds in data:
            yield 0xFF00, ds

    return ae, [(evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get), (evt.EVT_C_MOVE, on_move)]


def query() -> Dataset:
    return ds_of(QueryRetrieveLevel="STUDY", StudyInstanceUID="1.2.3.4", PatientID="")


# -- pynetdicom's SCU, our SCP -------------------------------------------------------------


@pytest.mark.asyncio
async def test_pynetdicom_scu_find_get_move_against_our_scp() -> None:
    data, found = instances(3), matches(4)
    stored_at_dest: list[str] = []
    stored_by_get: list[str] = []
    lock = threading.Lock()

    def pn_store(event: Any) -> int:
        with lock:
            stored_by_get.append(event.dataset.SOPInstanceUID)
        return 0x0000

    async def dest_store(event: Event) -> int:
        stored_at_dest.append(event.dataset.SOPInstanceUID)
        return 0x0000

    dest = AE("DEST")
    dest.add_supported_context(CT)
    async with serving([(evt.EVT_C_STORE, dest_store)], ae=dest) as dest_server:
        ae, handlers = our_qr_scp({"DEST": ("127.0.0.1", dest_server.port)}, data, found)
        async with serving(handlers, ae=ae) as server:
            pn = _pn_ae("PN_SCU", requested=(*QR, CT))
            role = pynetdicom.build_role(CT, scp_role=True)
            assoc = await in_thread(pn.associate, "127.0.0.1", server.port, ae_title="OUR_QR",
                                    ext_neg=[role],
                                    evt_handlers=[(pynetdicom.evt.EVT_C_STORE, pn_store)])
            assert assoc.is_established
            try:
                find = await in_thread(lambda: list(assoc.send_c_find(query(), STUDY_FIND)))
                get = await in_thread(lambda: list(assoc.send_c_get(query(), STUDY_GET)))
                move = await in_thread(lambda: list(assoc.send_c_move(query(), "DEST",
                                                                      STUDY_MOVE)))
                unknown = await in_thread(lambda: list(assoc.send_c_move(query(), "NOWHERE",
                                                                         STUDY_MOVE)))
            finally:
                await in_thread(assoc.release)
    assert [s.Status for s, _ in find] == [0xFF00] * 4 + [0x0000]
    assert [i.PatientID for _, i in find[:-1]] == [ds.PatientID for ds in found]
    assert get[-1][0].Status == 0x0000 and get[-1][0].NumberOfCompletedSuboperations == 3
    assert sorted(stored_by_get) == sorted(ds.SOPInstanceUID for ds in data)
    assert move[-1][0].Status == 0x0000 and move[-1][0].NumberOfCompletedSuboperations == 3
    assert stored_at_dest == [ds.SOPInstanceUID for ds in data]
    assert [s.Status for s, _ in unknown] == [0xA801]


@pytest.mark.asyncio
async def test_pynetdicom_scu_cancels_our_find() -> None:
    closed = asyncio.Event()

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        try:
            n = 0
            while True:
                yield 0xFF00, ds_of(PatientID=f"P{n}")
                n += 1
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    ae = AE("OUR_QR")
    for uid in QR:
        ae.add_supported_context(uid)
    async with serving([(evt.EVT_C_FIND, on_find)], ae=ae) as server:
        pn = _pn_ae("PN_SCU", requested=QR)
        assoc = await in_thread(pn.associate, "127.0.0.1", server.port, ae_title="OUR_QR")

        def find_then_cancel() -> list[int]:
            statuses = []
            for status, _ident in assoc.send_c_find(query(), STUDY_FIND, msg_id=7):
                statuses.append(int(status.Status))
                if len(statuses) == 2:
                    assoc.send_c_cancel(7, query_model=STUDY_FIND)
            return statuses

        try:
            statuses = await in_thread(find_then_cancel)
        finally:
            await in_thread(assoc.release)
        await bounded(closed.wait())
    assert statuses[:2] == [0xFF00, 0xFF00] and statuses[-1] == 0xFE00
    assert len(statuses) < 20


# -- our SCU, pynetdicom's SCP -------------------------------------------------------------


def _pn_qr_scp(data: list[Dataset], found: list[Dataset], dest_port: int) -> Any:
    ae = _pn_ae("PN_QR", supported=QR, requested=(CT,))
    ae.add_supported_context(CT, scu_role=True, scp_role=True)

    def on_find(event: Any) -> Iterator[Any]:
        for ds in found:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    def on_get(event: Any) -> Iterator[Any]:
        yield len(data)
        for ds in data:
            yield 0xFF00, ds

    def on_move(event: Any) -> Iterator[Any]:
        yield ("127.0.0.1", dest_port) if event.move_destination == "OUR_DEST" else (None, None)
        yield len(data)
        for ds in data:
            yield 0xFF00, ds

    return ae, [(pynetdicom.evt.EVT_C_FIND, on_find), (pynetdicom.evt.EVT_C_GET, on_get),
                (pynetdicom.evt.EVT_C_MOVE, on_move)]


@pytest.mark.asyncio
async def test_our_scu_find_get_move_against_pynetdicom_scp() -> None:
    data, found = instances(3), matches(5)
    got_by_get: list[str] = []
    got_at_dest: list[tuple[str, str | None]] = []

    async def on_get_store(event: Event) -> int:
        got_by_get.append(event.dataset.SOPInstanceUID)
        return 0x0000

    async def on_dest_store(event: Event) -> int:
        got_at_dest.append((event.dataset.SOPInstanceUID,
                            event.request.MoveOriginatorApplicationEntityTitle))
        return 0x0000

    dest = AE("OUR_DEST")
    dest.add_supported_context(CT)
    async with serving([(evt.EVT_C_STORE, on_dest_store)], ae=dest) as dest_server:
        pn_ae, pn_handlers = _pn_qr_scp(data, found, dest_server.port)
        with pn_server(pn_ae, pn_handlers) as port:
            scu = AE("OUR_SCU")
            for uid in (*QR, CT):
                scu.add_requested_context(uid)
            async with scu.associate("127.0.0.1", port, ae_title="PN_QR",
                                     ext_neg=[build_role(CT, scp_role=True)],
                                     evt_handlers=[(evt.EVT_C_STORE, on_get_store)]) as assoc:
                find = [(s, i) async for s, i in assoc.send_c_find(query(), STUDY_FIND)]
                get = [(s, i) async for s, i in assoc.send_c_get(query(), "S")]
                move = [(s, i) async for s, i in assoc.send_c_move(query(), "OUR_DEST", "S")]
                unknown = [(s, i) async for s, i in assoc.send_c_move(query(), "X", "S")]
                # leaving early: C-CANCEL, then the final response is awaited
                early = assoc.send_c_find(query(), STUDY_FIND)
                async for _s, _i in early:
                    break
                await bounded(early.aclose())
                assert assoc.in_flight == 0
                assert (await bounded(assoc.send_c_echo())).Status == 0x0000
    assert [int(s.Status) for s, _ in find] == [0xFF00] * 5 + [0x0000]
    assert [i.PatientID for _, i in find[:-1]] == [ds.PatientID for ds in found]  # type: ignore[union-attr]
    assert find[-1][1] is None
    assert get[-1][0].Status == 0x0000 and get[-1][0].NumberOfCompletedSuboperations == 3
    assert [s.NumberOfRemainingSuboperations for s, _ in get[:-1]] == [2, 1, 0]
    assert sorted(got_by_get) == sorted(ds.SOPInstanceUID for ds in data)
    assert move[-1][0].Status == 0x0000
    # (pynetdicom 3.0 names itself as the Move Originator, not the C-MOVE SCU: set, at least)
    assert sorted(uid for uid, _ in got_at_dest) == sorted(ds.SOPInstanceUID for ds in data)
    assert all(originator for _, originator in got_at_dest)
    assert [int(s.Status) for s, _ in unknown] == [0xA801]


# -- DCMTK's findscu, getscu, movescu against our SCP ---------------------------------------


@pytest.mark.asyncio
async def test_dcmtk_findscu_getscu_movescu_against_our_scp(tmp_path: Path) -> None:
    data, found = instances(2), matches(3)
    get_dir, move_dir = tmp_path / "get", tmp_path / "move"
    get_dir.mkdir()
    move_dir.mkdir()
    async with storescp("-aet", "DCMTK_DEST", "-od", str(move_dir)) as dest_port:
        ae, handlers = our_qr_scp({"DCMTK_DEST": ("127.0.0.1", dest_port)}, data, found)
        async with serving(handlers, ae=ae) as server:
            port = str(server.port)
            keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3.4"]
            code, out = await run(dcmtk("findscu"), "-S", "-v", "-aec", "OUR_QR", *keys,
                                  "-k", "PatientID", "127.0.0.1", port)
            assert code == 0, out
            assert out.count("Find Response:") == 3 and "PID2" in out, out
            code, out = await run(dcmtk("getscu"), "-S", "-aec", "OUR_QR", "-od", str(get_dir),
                                  *keys, "127.0.0.1", port, timeout=30)
            assert code == 0, out
            code, out = await run(dcmtk("movescu"), "-S", "-v", "-aec", "OUR_QR", "-aem",
                                  "DCMTK_DEST", *keys, "127.0.0.1", port, timeout=30)
            assert code == 0, out
            code, out = await run(dcmtk("movescu"), "-S", "-v", "-aec", "OUR_QR", "-aem",
                                  "UNKNOWN", *keys, "127.0.0.1", port, timeout=30)
            assert "Refused: MoveDestinationUnknown" in out, out
    expected = sorted(ds.SOPInstanceUID for ds in data)
    assert sorted(dcmread(p).SOPInstanceUID for p in get_dir.iterdir()) == expected
    assert sorted(dcmread(p).SOPInstanceUID for p in move_dir.iterdir()) == expected

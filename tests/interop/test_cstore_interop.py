"""C-STORE with real peers both ways: pynetdicom's and DCMTK's SCU to our SCP, our
``send_c_store`` to pynetdicom's and DCMTK's SCP. Files are made with pydicom."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from aiodimse import AE, evt
from aiodimse.events import Event
from aiodimse.presentation import ALL_TRANSFER_SYNTAXES

from ..aio._helpers import bounded, serving
from ..cstore._files import CT, instance, write
from ..dcmtk_tools import dcmtk, free_port, storescp
from ..dcmtk_tools import run_program as run

STORESCU = dcmtk("storescu")
STORESCP = dcmtk("storescp")


def _our_scp(spool: Path | None = None) -> AE:
    ae = AE("OUR_SCP")
    ae.add_supported_context(CT, ALL_TRANSFER_SYNTAXES)
    if spool is not None:
        ae.store_to_file = True
        ae.store_directory = str(spool)
    return ae


class Archive:
    """An EVT_C_STORE handler that files each instance (as a real archive would)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, event: Event) -> int:
        target = self.folder / f"{event.request.AffectedSOPInstanceUID}.dcm"
        try:
            os.replace(event.dataset_path, target)
        except AttributeError:  # in memory: written with its file meta
            ds = event.dataset
            ds.file_meta = event.file_meta
            ds.save_as(target, enforce_file_format=True)
        return 0x0000


@pytest.mark.asyncio
@pytest.mark.parametrize("to_file", [False, True])
async def test_dcmtk_storescu_to_our_scp(to_file: bool, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    files = [write(instance(pixels=20_000, syntax=ts), tmp_path / f"{i}.dcm")
             for i, ts in enumerate((ExplicitVRLittleEndian, ImplicitVRLittleEndian))]
    async with serving([(evt.EVT_C_STORE, Archive(archive))],
                       ae=_our_scp(tmp_path if to_file else None)) as server:
        code, out = await run(STORESCU, "-aec", "OUR_SCP", "127.0.0.1", str(server.port),
                              *map(str, files))
    assert code == 0, out
    for path in files:
        sent = dcmread(path)
        stored = dcmread(archive / f"{sent.SOPInstanceUID}.dcm")
        assert stored.PixelData == sent.PixelData
        assert stored.PatientName == sent.PatientName


@pytest.mark.asyncio
async def test_pynetdicom_scu_to_our_scp(tmp_path: Path) -> None:
    from pynetdicom import AE as PynetdicomAE

    archive = tmp_path / "archive"
    archive.mkdir()
    ds = instance(pixels=50_000)

    def send(port: int) -> list[int]:
        ae = PynetdicomAE("PYNETDICOM")
        ae.add_requested_context(CT, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", port, ae_title="OUR_SCP")
        assert assoc.is_established
        try:
            return [int(assoc.send_c_store(ds).Status)]
        finally:
            assoc.release()

    async with serving([(evt.EVT_C_STORE, Archive(archive))],
                       ae=_our_scp(tmp_path)) as server:
        statuses = await bounded(asyncio.to_thread(send, server.port), 30)
    assert statuses == [0]
    stored = dcmread(archive / f"{ds.SOPInstanceUID}.dcm")
    assert stored.PixelData == ds.PixelData
    assert stored.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


@pytest.mark.asyncio
async def test_our_scu_to_pynetdicom_scp(tmp_path: Path) -> None:
    from pynetdicom import AE as PynetdicomAE
    from pynetdicom import evt as pevt

    received: list[Any] = []

    def on_store(event: Any) -> int:
        received.append((event.dataset, event.context.transfer_syntax))
        return 0x0000

    scp = PynetdicomAE("PYNETDICOM")
    scp.add_supported_context(CT, [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
    port = free_port()
    server = scp.start_server(("127.0.0.1", port), block=False,
                              evt_handlers=[(pevt.EVT_C_STORE, on_store)])
    try:
        ae = AE("OUR_SCU")
        ae.add_requested_context(CT, [ExplicitVRLittleEndian])
        ds = instance(pixels=30_000)
        path = write(instance(pixels=30_000), tmp_path / "f.dcm")
        async with ae.associate("127.0.0.1", port, ae_title="PYNETDICOM") as assoc:
            first = await bounded(assoc.send_c_store(ds))
            second = await bounded(assoc.send_c_store(path))
    finally:
        await asyncio.to_thread(server.shutdown)
    assert first.Status == 0 and second.Status == 0
    assert [str(r[0].SOPInstanceUID) for r in received] == [
        ds.SOPInstanceUID, dcmread(path).SOPInstanceUID]
    assert received[0][0].PixelData == ds.PixelData
    assert received[1][1] == ExplicitVRLittleEndian


@pytest.mark.asyncio
@pytest.mark.parametrize("streamed", [False, True])
async def test_our_scu_to_dcmtk_storescp(streamed: bool, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from aiodimse import store_scu
    if streamed:
        monkeypatch.setattr(store_scu, "STREAM_FROM", 1)
        monkeypatch.setattr(store_scu, "STREAM_PIECE", 64 * 1024)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    path = write(instance(pixels=300_000), tmp_path / "f.dcm")
    ae = AE("OUR_SCU")
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    async with storescp("-aet", "STORESCP", "-od", str(out_dir), "-uf") as port:
        assoc = await bounded(ae.associate("127.0.0.1", port, ae_title="STORESCP"))
        try:
            status = await bounded(assoc.send_c_store(path))
        finally:
            await bounded(assoc.release())
    assert status.Status == 0
    sent = dcmread(path)
    (stored_path,) = out_dir.iterdir()
    stored = dcmread(stored_path)
    assert stored.SOPInstanceUID == sent.SOPInstanceUID
    assert stored.PixelData == sent.PixelData

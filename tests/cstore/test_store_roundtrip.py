"""C-STORE between two aiodimse AEs: the SCU's choices, the SCP's event, its refusals."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from aiodimse import AE, evt
from aiodimse.events import Event
from aiodimse.store_scu import NoStoreContextError

from ..aio._helpers import VERIFICATION, bounded, serving
from ._files import CT, instance, write


def _scp(**settings: Any) -> AE:
    ae = AE("STORE_SCP")
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(CT, [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                  JPEGBaseline8Bit])
    for name, value in settings.items():
        setattr(ae, name, value)
    return ae


def _scu(*syntaxes: str) -> AE:
    ae = AE("STORE_SCU")
    ae.add_requested_context(VERIFICATION)
    for ts in syntaxes or (ExplicitVRLittleEndian,):
        ae.add_requested_context(CT, ts)
    return ae


class Seen:
    """What the handler saw of each event."""

    def __init__(self, status: Any = 0x0000) -> None:
        self.events: list[dict[str, Any]] = []
        self.status = status

    async def __call__(self, event: Event) -> Any:
        ds = event.dataset
        seen: dict[str, Any] = {"ds": ds, "meta": event.file_meta,
                                "context": event.context, "request": event.request}
        try:
            path = event.dataset_path
        except AttributeError:
            path = None
        if path is not None:
            seen["path_exists"] = path.exists()
            seen["file"] = dcmread(path)
        self.events.append(seen)
        return self.status


@pytest.mark.asyncio
@pytest.mark.parametrize("to_file", [False, True])
async def test_a_dataset_is_stored_and_the_event_has_pynetdicoms_members(
        to_file: bool, tmp_path: Path) -> None:
    seen = Seen()
    ds = instance(pixels=4096)
    scp = _scp(store_to_file=to_file, store_directory=str(tmp_path))
    async with serving([(evt.EVT_C_STORE, seen)], ae=scp) as server, \
            _scu().associate("127.0.0.1", server.port, ae_title="STORE_SCP") as assoc:
        status = await bounded(assoc.send_c_store(ds, priority=2))
    assert status.Status == 0x0000
    (got,) = seen.events
    assert got["ds"].SOPInstanceUID == ds.SOPInstanceUID
    assert got["ds"].PixelData == ds.PixelData
    assert "TransferSyntaxUID" not in got["ds"]  # the data set alone
    meta = got["meta"]
    assert meta.MediaStorageSOPClassUID == CT
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert meta.ImplementationClassUID == scp.implementation_class_uid
    assert got["request"].Priority == 2
    assert got["request"].AffectedSOPInstanceUID == ds.SOPInstanceUID
    assert got["context"].abstract_syntax == CT
    if to_file:
        assert got["path_exists"]
        assert got["file"].SOPInstanceUID == ds.SOPInstanceUID
        assert got["file"].file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert got["file"].PixelData == ds.PixelData
        assert os.listdir(tmp_path) == []  # removed after the handler returned
    else:
        assert "file" not in got


@pytest.mark.asyncio
async def test_a_handler_may_keep_the_file_by_moving_it(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    spool = tmp_path / "spool"
    spool.mkdir()

    def keep(event: Event) -> int:  # a plain handler: runs on the AE's threads
        os.replace(event.dataset_path, archive / "kept.dcm")
        return 0x0000

    ds = instance(pixels=2048)
    async with serving([(evt.EVT_C_STORE, keep)],
                       ae=_scp(store_to_file=True, store_directory=str(spool))) as server, \
            _scu().associate("127.0.0.1", server.port) as assoc:
        status = await bounded(assoc.send_c_store(ds))
    assert status.Status == 0
    kept = dcmread(archive / "kept.dcm")
    assert kept.SOPInstanceUID == ds.SOPInstanceUID and kept.PixelData == ds.PixelData
    assert os.listdir(spool) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("large", [False, True])
async def test_a_file_is_sent_as_stored(large: bool, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from aiodimse import store_scu
    if large:  # the streamed path, without a large file
        monkeypatch.setattr(store_scu, "STREAM_FROM", 1)
        monkeypatch.setattr(store_scu, "STREAM_PIECE", 1000)
    seen = Seen()
    ds = instance(pixels=10_000, syntax=ImplicitVRLittleEndian)
    path = write(ds, tmp_path / "in.dcm")
    async with serving([(evt.EVT_C_STORE, seen)], ae=_scp()) as server, \
            _scu(ExplicitVRLittleEndian, ImplicitVRLittleEndian).associate(
                "127.0.0.1", server.port) as assoc:
        status = await bounded(assoc.send_c_store(path))
        again = await bounded(assoc.send_c_echo())  # the association is fine after it
    assert status.Status == 0 and again.Status == 0
    (got,) = seen.events
    assert got["context"].transfer_syntax == ImplicitVRLittleEndian  # the file's own
    assert got["ds"].PixelData == ds.PixelData


@pytest.mark.asyncio
async def test_an_uncompressed_instance_is_reencoded_a_compressed_one_refused(
        tmp_path: Path) -> None:
    seen = Seen()
    big_endian = instance(pixels=64, syntax=ExplicitVRBigEndian)
    jpeg = instance(pixels=64, syntax=JPEGBaseline8Bit)
    async with serving([(evt.EVT_C_STORE, seen)], ae=_scp()) as server, \
            _scu(ImplicitVRLittleEndian).associate("127.0.0.1", server.port) as assoc:
        status = await bounded(assoc.send_c_store(big_endian))
        with pytest.raises(NoStoreContextError, match="not transcoded"):
            await bounded(assoc.send_c_store(jpeg))
    assert status.Status == 0
    assert seen.events[0]["context"].transfer_syntax == ImplicitVRLittleEndian
    assert seen.events[0]["ds"].SOPInstanceUID == big_endian.SOPInstanceUID


@pytest.mark.asyncio
@pytest.mark.parametrize("to_file", [False, True])
async def test_bad_instances_are_refused_before_the_handler(to_file: bool, tmp_path: Path
                                                            ) -> None:
    seen = Seen()
    mismatched = instance()
    other_class = instance()
    unreadable = instance()
    scp = _scp(store_to_file=to_file, store_directory=str(tmp_path))
    async with serving([(evt.EVT_C_STORE, seen)], ae=scp) as server, \
            _scu().associate("127.0.0.1", server.port) as assoc:
        context = assoc._store_context(CT, ExplicitVRLittleEndian)[0]

        async def raw(fields: dict[str, Any], data: bytes) -> Dataset:
            from aiodimse.requests import status_dataset
            from aiodimse.store_scu import _StoreCommand
            command = _StoreCommand({"Priority": 0, "AffectedSOPClassUID": CT} | fields)
            received = await bounded(assoc._request(context, command, None, data))
            return status_dataset(received.message)

        from aiodimse.datasets import encode_dataset
        wrong_uid = await raw({"AffectedSOPInstanceUID": "1.2.3.4"},
                              encode_dataset(mismatched, ExplicitVRLittleEndian))
        other_class.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        wrong_class = await raw({"AffectedSOPInstanceUID": other_class.SOPInstanceUID},
                                encode_dataset(other_class, ExplicitVRLittleEndian))
        garbage = await raw({"AffectedSOPInstanceUID": unreadable.SOPInstanceUID},
                            b"\x08\x00\x16\x00UI\x40\x00" + b"1.2")  # 64 bytes said, 3 sent
        echo = await bounded(assoc.send_c_echo())
    assert wrong_uid.Status == 0xA900 and "Instance" in wrong_uid.ErrorComment
    assert wrong_class.Status == 0xA900
    assert garbage.Status == 0xC000  # (pydicom reads what it can: no UIDs in it)
    assert echo.Status == 0  # the association kept
    assert seen.events == []
    assert os.listdir(tmp_path) == []


@pytest.mark.asyncio
async def test_no_handler_and_a_failing_handler_give_0xC211() -> None:
    def broken(event: Event) -> int:
        raise RuntimeError("boom")

    for handlers in ([], [(evt.EVT_C_STORE, broken)]):
        async with serving(handlers, ae=_scp()) as server, \
                _scu().associate("127.0.0.1", server.port) as assoc:
            status = await bounded(assoc.send_c_store(instance()))
            assert status.Status == 0xC211
            assert (await bounded(assoc.send_c_echo())).Status == 0


@pytest.mark.asyncio
async def test_a_status_dataset_from_the_handler_is_answered() -> None:
    answer = Dataset()
    answer.Status = 0xB000
    answer.ErrorComment = "coerced"
    async with serving([(evt.EVT_C_STORE, Seen(answer))], ae=_scp()) as server, \
            _scu().associate("127.0.0.1", server.port) as assoc:
        ds = instance()
        status = await bounded(assoc.send_c_store(ds))
    assert status.Status == 0xB000 and status.ErrorComment == "coerced"
    assert status.AffectedSOPInstanceUID == ds.SOPInstanceUID


@pytest.mark.asyncio
async def test_a_full_disk_is_refused_0xA700_and_leaves_no_file(tmp_path: Path) -> None:
    seen = Seen()
    scp = _scp(store_to_file=True, store_directory=str(tmp_path), maximum_stored_size=1000)
    async with serving([(evt.EVT_C_STORE, seen)], ae=scp) as server, \
            _scu().associate("127.0.0.1", server.port) as assoc:
        status = await bounded(assoc.send_c_store(instance(pixels=5000)))
        small = await bounded(assoc.send_c_store(instance(pixels=64)))
    assert status.Status == 0xA700
    assert small.Status == 0
    assert len(seen.events) == 1
    assert os.listdir(tmp_path) == []


@pytest.mark.asyncio
async def test_no_data_set_or_a_bad_instance_uid_is_refused_by_the_decoder() -> None:
    from aiodimse.requests import status_dataset
    from aiodimse.store_scu import _StoreCommand

    seen = Seen()
    async with serving([(evt.EVT_C_STORE, seen)], ae=_scp()) as server, \
            _scu().associate("127.0.0.1", server.port) as assoc:
        context = assoc._store_context(CT, ExplicitVRLittleEndian)[0]
        no_data = await bounded(assoc._request(context, _StoreCommand(
            {"Priority": 0, "AffectedSOPClassUID": CT, "AffectedSOPInstanceUID": "1.2.3"}),
            None))
        ds = instance(uid="1.2.03")  # a leading zero: no UID (PS3.5 9.1)
        from aiodimse.datasets import encode_dataset
        bad_uid = await bounded(assoc._request(context, _StoreCommand(
            {"Priority": 0, "AffectedSOPClassUID": CT, "AffectedSOPInstanceUID": "1.2.03"}),
            None, encode_dataset(ds, ExplicitVRLittleEndian)))
        echo = await bounded(assoc.send_c_echo())
    assert status_dataset(no_data.message).Status == 0x0110
    assert status_dataset(bad_uid.message).Status == 0x0117
    assert echo.Status == 0 and seen.events == []


@pytest.mark.asyncio
async def test_an_association_aborted_mid_instance_leaves_no_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiodimse import store_scp, store_scu

    discarded: list[bool] = []
    real_discard = store_scp.FileSink.discard

    def discard(sink: store_scp.FileSink) -> None:
        discarded.append(sink.path is not None and sink.path.exists())
        real_discard(sink)

    monkeypatch.setattr(store_scp.FileSink, "discard", discard)
    monkeypatch.setattr(store_scu, "STREAM_PIECE", 2000)
    seen = Seen()
    spool = tmp_path / "spool"
    spool.mkdir()
    path = write(instance(pixels=50_000), tmp_path / "in.dcm")
    async with serving([(evt.EVT_C_STORE, seen)],
                       ae=_scp(store_to_file=True, store_directory=str(spool))) as server:
        assoc = await bounded(_scu().associate("127.0.0.1", server.port))
        for _ in range(2):  # whole ones first: from the second on, a spare file is made ahead
            assert (await bounded(assoc.send_c_store(path))).Status == 0
        context = assoc._store_context(CT, ExplicitVRLittleEndian)[0]
        ds = dcmread(path)
        command = store_scu._StoreCommand({"Priority": 0, "AffectedSOPClassUID": CT,
                                           "AffectedSOPInstanceUID": ds.SOPInstanceUID})
        with open(path, "rb") as fp:
            offset, _syntax = store_scu.data_offset(fp) or (0, "")
            size = path.stat().st_size - offset
            from aiodimse.errors import AssociationAbortedError
            with pytest.raises(AssociationAbortedError, match="ended"):
                await bounded(assoc._send_streamed(context, command, fp, size + 10_000))
        await bounded(assoc.wait_closed())
        for _ in range(100):  # the server sees the A-ABORT
            if discarded:
                break
            await asyncio.sleep(0.02)
    assert discarded == [True]  # a partial file existed, and went
    assert os.listdir(spool) == []  # and so did the spare made ahead
    assert len(seen.events) == 2


@pytest.mark.asyncio
async def test_a_deflated_instance_is_inflated_then_served() -> None:
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    seen = Seen()
    scp = _scp()
    scp.add_supported_context(CT, DeflatedExplicitVRLittleEndian)
    ds = instance(pixels=8192)
    async with serving([(evt.EVT_C_STORE, seen)], ae=scp) as server, \
            _scu(DeflatedExplicitVRLittleEndian).associate("127.0.0.1", server.port) as assoc:
        status = await bounded(assoc.send_c_store(ds))
    assert status.Status == 0
    (got,) = seen.events
    assert got["context"].transfer_syntax == DeflatedExplicitVRLittleEndian
    assert got["meta"].TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert got["ds"].PixelData == ds.PixelData


@pytest.mark.asyncio
@pytest.mark.parametrize("suspends", [False, True])
async def test_a_handler_that_does_or_does_not_suspend_is_answered_and_its_file_removed(
        suspends: bool, tmp_path: Path) -> None:
    """Either way the handler sees the streamed file, its answer is sent, and the
    file goes after (the handler's Task has no time-limit Task of its own)."""
    seen: list[bool] = []

    async def handler(event: Event) -> int:
        if suspends:
            await asyncio.sleep(0.01)
        seen.append(event.dataset_path.exists())
        return 0xB000

    scp = _scp(store_to_file=True, store_directory=str(tmp_path))
    async with serving([(evt.EVT_C_STORE, handler)], ae=scp) as server, \
            _scu().associate("127.0.0.1", server.port) as assoc:
        statuses = [(await bounded(assoc.send_c_store(instance()))).Status for _ in range(3)]
    assert statuses == [0xB000] * 3
    assert seen == [True] * 3
    assert os.listdir(tmp_path) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("to_file", [False, True])
async def test_a_handler_past_its_time_limit_is_cancelled_then_answered_0xC211(
        to_file: bool, tmp_path: Path) -> None:
    """The handler ends (cancelled) before the answer, and its streamed file after it."""
    ended: list[str] = []

    async def stuck(event: Event) -> int:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            if to_file:
                ended.append("file there" if event.dataset_path.exists() else "file gone")
            else:
                ended.append("cancelled")
            raise
        return 0

    async def failing(event: Event) -> int:
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    scp = _scp(store_to_file=to_file, store_directory=str(tmp_path), handler_timeout=0.2)
    for handler, status in ((stuck, 0xC211), (failing, 0xC211)):
        async with serving([(evt.EVT_C_STORE, handler)], ae=scp) as server, \
                _scu().associate("127.0.0.1", server.port) as assoc:
            assert (await bounded(assoc.send_c_store(instance()))).Status == status
            assert (await bounded(assoc.send_c_echo())).Status == 0  # association kept
    assert ended == ["file there" if to_file else "cancelled"]
    assert os.listdir(tmp_path) == []

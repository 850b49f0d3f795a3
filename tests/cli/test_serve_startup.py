"""``serve`` listens before its start-up index scan, which runs in the background
(progress at INFO); commitment reports wait for that scan, so an instance the scanner
reaches later is reported committed; a rescan picks up files added while running;
a restart reads no unchanged file; a failed scan does not stop the server.

In-process (``serve(config)`` as a task); the scan is held on a FIFO (``_slow.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

import aiodimse.store.index as index_module
from aiodimse import AE
from aiodimse.cli import indexing
from aiodimse.cli.config import PeerEntry, ServeConfig
from aiodimse.cli.serve import serve
from aiodimse.errors import AssociationError
from aiodimse.presentation import VERIFICATION
from aiodimse.store import DB_FILENAME, open_store
from aiodimse.store.interface import PENDING

from ._serve import CT, free_port, wait_for, write_instance
from ._slow import hold_scan, release_scan
from .test_serve_commitment import listener, request_and_release


def _config(tmp_path: Path, archive: Path, back_port: int, **changes: object) -> ServeConfig:
    config = ServeConfig(ae_title="ARCHIVE", host="127.0.0.1", port=free_port(),
                         data=tmp_path / "data", index_dirs=(archive,),
                         ae_table={"MODALITY": PeerEntry("127.0.0.1", back_port)},
                         acse_timeout=5, dimse_timeout=5, connection_timeout=5,
                         shutdown_grace=2)
    return replace(config, **changes)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _serving(config: ServeConfig) -> AsyncIterator[None]:
    """``serve(config)`` running until the block ends (then cancelled: it stops)."""
    task = asyncio.ensure_future(serve(config))
    try:
        await asyncio.wait_for(_echo_until_up(config.port), 20)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)


async def _echo(port: int) -> int:
    ae = AE("MODALITY")
    ae.add_requested_context(VERIFICATION)
    async with ae.associate("127.0.0.1", port, ae_title="ARCHIVE") as assoc:
        return int((await asyncio.wait_for(assoc.send_c_echo(), 5)).Status)


async def _echo_until_up(port: int) -> None:
    while True:
        try:
            assert await _echo(port) == 0
            return
        except AssociationError:  # not listening yet
            await asyncio.sleep(0.05)


async def _find(config: ServeConfig, uid: str) -> bool:
    store = open_store(config.data / DB_FILENAME)
    try:
        return uid in await store.find_instances([uid])
    finally:
        await store.aclose()


async def test_echo_while_scanning_and_commitment_waits_for_the_scan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "aiodimse")
    archive = tmp_path / "archive"
    fifo = hold_scan(archive)
    later = [write_instance(archive) for _ in range(3)]  # reached after the FIFO
    back_port = free_port()
    config = _config(tmp_path, archive, back_port)
    async with listener(back_port) as reports, _serving(config):
        try:
            assert await _echo(config.port) == 0  # the scan is held: we listen anyway
            transaction = str(generate_uid())
            refs = [(CT, uid) for uid in later]
            assert await request_and_release(config.port, transaction, refs) == 0
            store = open_store(config.data / DB_FILENAME)
            try:  # recorded at once, not reported while the scan runs
                assert not await store.index_complete()
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(reports.get(), 1.5)
                state = await store.commitment_state(transaction)
                assert state is not None and state[0] == PENDING
            finally:
                await store.aclose()
            assert "indexing " in caplog.text and "in the background" in caplog.text
        finally:
            assert await asyncio.to_thread(release_scan, fifo)
        event_type, info, _caller = await asyncio.wait_for(reports.get(), 15)
        assert event_type == 1  # committed: not failed for being reached late
        assert info.TransactionUID == transaction
        assert sorted(r.ReferencedSOPInstanceUID for r in info.ReferencedSOPSequence) == \
            sorted(later)
        assert "index scan done" in caplog.text
        assert "indexed 3, skipped 1 (1 not DICOM)" in caplog.text


async def test_progress_lines_while_scanning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, "aiodimse")
    monkeypatch.setattr(indexing, "PROGRESS_EVERY", 0.0)
    archive = tmp_path / "archive"
    for _ in range(3):
        write_instance(archive)
    config = _config(tmp_path, archive, free_port())
    original = indexing.index_paths

    async def small_batches(*args: object, **kwargs: object) -> int:
        kwargs["batch"] = 1
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(indexing, "index_paths", small_batches)
    async with _serving(config):
        await wait_for(lambda: "index scan done" in caplog.text, 10, "the scan")
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("indexing:")]
    assert progress[-1] == "indexing: 3 files seen, 3 indexed, 0 unchanged, 0 skipped"


async def test_a_file_added_while_running_is_found_by_the_rescan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "aiodimse")
    archive = tmp_path / "archive"
    write_instance(archive)
    back_port = free_port()
    config = _config(tmp_path, archive, back_port, rescan_interval=0.2)
    async with listener(back_port) as reports, _serving(config):
        await wait_for(lambda: "index scan done" in caplog.text, 10, "the start-up scan")
        added = write_instance(archive / "new")
        deadline = asyncio.get_running_loop().time() + 10
        while not await _find(config, added):
            assert asyncio.get_running_loop().time() < deadline, "the rescan did not index it"
            await asyncio.sleep(0.1)
        assert "rescan: indexed 1, unchanged 1, skipped 0" in caplog.text
        transaction = str(generate_uid())
        assert await request_and_release(config.port, transaction, [(CT, added)]) == 0
        event_type, info, _caller = await asyncio.wait_for(reports.get(), 15)
    assert event_type == 1
    assert [r.ReferencedSOPInstanceUID for r in info.ReferencedSOPSequence] == [added]


async def test_a_restart_reads_no_unchanged_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, "aiodimse")
    archive = tmp_path / "archive"
    for _ in range(5):
        write_instance(archive)
    config = _config(tmp_path, archive, free_port())
    async with _serving(config):
        await wait_for(lambda: "index scan done" in caplog.text, 10, "the first scan")
    reads: list[Path] = []
    real = index_module._read

    def counting(path: Path) -> tuple[str, str] | str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(index_module, "_read", counting)
    caplog.clear()
    async with _serving(config):
        await wait_for(lambda: "index scan done" in caplog.text, 10, "the second scan")
    assert reads == []
    assert "indexed 0, unchanged 5, skipped 0" in caplog.text


async def test_a_failed_scan_is_logged_and_serving_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, "aiodimse")

    async def broken(*args: object, **kwargs: object) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(indexing, "index_paths", broken)
    archive = tmp_path / "archive"
    present = write_instance(archive)
    back_port = free_port()
    config = _config(tmp_path, archive, back_port)
    async with listener(back_port) as reports, _serving(config):
        await wait_for(lambda: "index scan of" in caplog.text, 10, "the failure")
        assert "failed after 0 files: OSError" in caplog.text
        assert await _echo(config.port) == 0
        transaction = str(generate_uid())
        assert await request_and_release(config.port, transaction, [(CT, present)]) == 0
        event_type, info, _caller = await asyncio.wait_for(reports.get(), 15)
    # the hold ended with the scan: the report goes out, from the index as it is
    assert event_type == 2
    assert info.FailedSOPSequence[0].FailureReason == 0x0112

"""``serve --workers 2 --index-dir``: the workers serve while the supervisor scans,
and no worker sends a commitment report before the scan is done (the store's
index_complete), so an instance the scanner reaches later is reported committed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from ._serve import CT, free_port, write_instance
from ._slow import hold_scan, release_scan
from .conftest import StartServe
from .test_serve_commitment import listener, request_and_release


async def test_workers_hold_reports_until_the_supervisor_scanned(
    serve: StartServe, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    fifo = hold_scan(archive)
    later = sorted(write_instance(archive) for _ in range(2))
    back_port = free_port()
    async with listener(back_port) as reports:
        srv = serve("-aet", "ARCHIVE", "--workers", "2", "--index-dir", str(archive),
                    "--peer", f"MODALITY@127.0.0.1:{back_port}", "--log-level", "INFO")
        try:
            await srv.ready(count=2)  # both workers listen: the scan is held
            transaction = str(generate_uid())
            assert await request_and_release(srv.port, transaction,
                                             [(CT, uid) for uid in later]) == 0
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(reports.get(), 2)
            assert "index scan done" not in srv.log()
        finally:
            assert await asyncio.to_thread(release_scan, fifo)
        event_type, info, _caller = await asyncio.wait_for(reports.get(), 20)
    assert event_type == 1
    assert sorted(r.ReferencedSOPInstanceUID for r in info.ReferencedSOPSequence) == later
    log = srv.log()
    assert log.index(" serving ") < log.index("index scan done")
    assert log.count("index scan done") == 1  # the supervisor alone scans
    assert srv.stop() == 0

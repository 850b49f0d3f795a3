"""A data directory from main (schema version 0, before the delivery queue) keeps
working: ``serve`` upgrades it in place, delivers the reports it had pending (one
left leased by a crashed worker), serves its MPPS instance and its index, and still
refuses its used Transaction UIDs."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from pydicom.dataset import Dataset

from aiodimse import AE
from aiodimse.services import MPPS
from aiodimse.services import STORAGE_COMMITMENT as STGCMT
from aiodimse.services import STORAGE_COMMITMENT_INSTANCE as STGCMT_INSTANCE
from aiodimse.store import DB_FILENAME
from aiodimse.store.sqlite import SCHEMA_VERSION

from ._serve import CT, free_port, wait_for, write_instance
from .conftest import StartServe
from .test_serve_commitment import _request, listener

DUMP = Path(__file__).with_name("main_5a0ed7e.sql")
INDEXED, MISSING = "1.2.826.0.1.3680043.10.1.1", "1.2.826.0.1.3680043.10.1.9"
STEP = "1.2.826.0.1.3680043.10.2.1"
T1, T2, T3, T4 = (f"1.2.826.0.1.3680043.10.3.{n}" for n in range(1, 5))


async def test_serve_upgrades_a_data_directory_from_main(
    serve: StartServe, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    conn = sqlite3.connect(data / DB_FILENAME)
    conn.executescript(DUMP.read_text())
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()
    back_port = free_port()
    async with listener(back_port, "CT1") as reports:
        srv = await serve("-aet", "ARCHIVE", "--peer", f"CT1@127.0.0.1:{back_port}").ready()
        got: dict[str, tuple[int, Dataset]] = {}
        for _ in range(2):
            event_type, info, _caller = await asyncio.wait_for(reports.get(), 10)
            got[str(info.TransactionUID)] = (event_type, info)
        assert set(got) == {T1, T4}  # pending (one retried, one leased by a dead worker)
        for event_type, info in got.values():
            assert event_type == 2
            (ok,) = info.ReferencedSOPSequence
            (failed,) = info.FailedSOPSequence
            assert ok.ReferencedSOPInstanceUID == INDEXED
            assert (failed.ReferencedSOPInstanceUID, failed.FailureReason) == (MISSING, 0x0112)
        assert "2 N-EVENT-REPORTs pending" in srv.log()
        ae = AE("CT1")
        ae.add_requested_context(MPPS)
        ae.add_requested_context(STGCMT)
        async with ae.associate("127.0.0.1", srv.port, ae_title="ARCHIVE") as assoc:
            status, attrs = await assoc.send_n_get([0x00400252], MPPS, STEP)
            assert status.Status == 0
            assert attrs is not None and attrs.PerformedProcedureStepStatus == "IN PROGRESS"
            mods = Dataset()
            mods.PerformedProcedureStepStatus = "COMPLETED"
            status, _ = await assoc.send_n_set(mods, MPPS, STEP)
            assert status.Status == 0
            status, _ = await assoc.send_n_action(
                _request(T2, [(CT, INDEXED)]), 1, STGCMT, STGCMT_INSTANCE)
            assert status.Status == 0x0110  # Transaction UID already used
        await asyncio.sleep(0.3)
        assert reports.empty()  # each pending report once, none for the refused request
    assert srv.stop() == 0
    conn = sqlite3.connect(data / DB_FILENAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert dict(conn.execute("SELECT key, state FROM deliveries")) == {
            T1: "delivered", T2: "delivered", T3: "expired", T4: "delivered"}
        assert conn.execute("SELECT status FROM mpps").fetchall() == [("COMPLETED",)]
    finally:
        conn.close()


DUMP_1 = Path(__file__).with_name("main_9d5ba1d.sql")  # schema version 1
T_1 = "1.2.826.0.1.3680043.10.3.1"  # its pending report, leased by a dead worker


async def test_serve_upgrades_a_version_1_data_directory(
    serve: StartServe, tmp_path: Path
) -> None:
    """main at 9d5ba1d: the report it had pending goes out (its instance indexed
    then), the index directory is scanned into the new file table, version 2."""
    data = tmp_path / "data"
    data.mkdir()
    conn = sqlite3.connect(data / DB_FILENAME)
    conn.executescript(DUMP_1.read_text())
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    archive = tmp_path / "archive"
    added = write_instance(archive)
    back_port = free_port()
    async with listener(back_port, "CT1") as reports:
        srv = await serve("-aet", "ARCHIVE", "--peer", f"CT1@127.0.0.1:{back_port}",
                          "--index-dir", str(archive)).ready()
        event_type, info, _caller = await asyncio.wait_for(reports.get(), 15)
    assert (event_type, info.TransactionUID) == (1, T_1)
    assert [r.ReferencedSOPInstanceUID for r in info.ReferencedSOPSequence] == [INDEXED]
    await wait_for(lambda: "index scan done" in srv.log(), 10, "the scan")
    assert srv.stop() == 0
    conn = sqlite3.connect(data / DB_FILENAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert [r[0] for r in conn.execute("SELECT sop_instance_uid FROM files")] == [added]
        assert dict(conn.execute("SELECT key, state FROM deliveries")) == {T_1: "delivered"}
    finally:
        conn.close()

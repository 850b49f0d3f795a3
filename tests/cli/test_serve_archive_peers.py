"""Real peers and ``aiodimse serve`` as an archive: DCMTK's storescu, findscu, getscu,
movescu (to DCMTK's storescp) against it, pynetdicom's SCU, and our ``aiodimse store``
to DCMTK's storescp."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE as PynetdicomAE
from pynetdicom import build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from ..dcmtk_tools import dcmtk, run_program
from ..dcmtk_tools import storescp as dcmtk_storescp
from .conftest import StartServe
from .test_archive_tools import write

TIMEOUT = 60


async def program(*argv: str) -> tuple[int, str]:
    """A DCMTK tool run to its end, within TIMEOUT; (exit status, output)."""
    return await run_program(*argv, timeout=TIMEOUT)


@pytest.fixture
async def storescp(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """DCMTK's storescp as DEST on a free port, writing into a tmp folder."""
    out = tmp_path / "storescp"
    out.mkdir()
    async with dcmtk_storescp("-aet", "DEST", "+xa", "-od", str(out)) as port:
        yield port, out


def _files(folder: Path) -> set[str]:
    return {str(dcmread(p).SOPInstanceUID) for p in folder.rglob("*") if p.is_file()}


async def test_dcmtk_stores_then_finds_gets_and_moves(
        serve: StartServe, tmp_path: Path, storescp: tuple[int, Path]) -> None:
    dest_port, dest_dir = storescp
    srv = await serve("--peer", f"DEST@127.0.0.1:{dest_port}").ready()
    study, series = str(generate_uid()), str(generate_uid())
    files = tmp_path / "in"
    uids = {write(files / "a" / "b", study, series) for _ in range(3)}
    code, out = await program(dcmtk("storescu"), "-aec", "AIODIMSE", "+sd", "+r",
                              "127.0.0.1", str(srv.port), str(files))
    assert code == 0, out
    assert {p.stem for p in (srv.data / "archive" / study / series).iterdir()} == uids

    found = tmp_path / "found"
    found.mkdir()
    code, out = await program(dcmtk("findscu"), "-S", "-aec", "AIODIMSE", "-X", "-od",
                              str(found), "-k", "QueryRetrieveLevel=SERIES",
                              "-k", f"StudyInstanceUID={study}", "-k", "SeriesInstanceUID",
                              "-k", "NumberOfSeriesRelatedInstances",
                              "127.0.0.1", str(srv.port))
    assert code == 0, out
    [answer] = [dcmread(p) for p in found.iterdir()]
    assert answer.SeriesInstanceUID == series
    assert int(answer.NumberOfSeriesRelatedInstances) == 3

    got = tmp_path / "got"
    got.mkdir()
    code, out = await program(dcmtk("getscu"), "-S", "-aec", "AIODIMSE", "-od", str(got),
                              "-k", "QueryRetrieveLevel=STUDY",
                              "-k", f"StudyInstanceUID={study}", "127.0.0.1", str(srv.port))
    assert code == 0, out
    assert _files(got) == uids

    code, out = await program(dcmtk("movescu"), "-S", "-aec", "AIODIMSE", "-aem", "DEST",
                              "-k", "QueryRetrieveLevel=STUDY",
                              "-k", f"StudyInstanceUID={study}", "127.0.0.1", str(srv.port))
    assert code == 0, out
    assert _files(dest_dir) == uids


async def test_our_store_to_dcmtk_storescp(tmp_path: Path,
                                           storescp: tuple[int, Path]) -> None:
    port, out_dir = storescp
    files = tmp_path / "in"
    uids = {write(files, str(generate_uid()), str(generate_uid())) for _ in range(2)}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "aiodimse", "store", "-aec", "DEST",
                         "127.0.0.1", str(port), str(files)],
        capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stored 2, failed 0, skipped 0" in done.stdout
    assert _files(out_dir) == uids


def _pynetdicom_session(port: int, folder: Path, study: str) -> tuple[list[int], list[str],
                                                                      list[str]]:
    """pynetdicom's SCU (blocking): C-STORE the files, C-FIND, then C-GET the study."""
    ae = PynetdicomAE(ae_title="PYNETDICOM")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    received: list[str] = []

    def on_store(event: evt.Event) -> int:
        received.append(str(event.dataset.SOPInstanceUID))
        return 0

    assoc = ae.associate("127.0.0.1", port, ae_title="AIODIMSE",
                         ext_neg=[build_role(CTImageStorage, scu_role=True, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    try:
        statuses = [int(assoc.send_c_store(str(p)).Status) for p in sorted(folder.iterdir())]
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study
        query.PatientName = ""
        matches = [str(i.StudyInstanceUID) for s, i in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind) if s.Status == 0xFF00]
        get = Dataset()
        get.QueryRetrieveLevel = "STUDY"
        get.StudyInstanceUID = study
        finals = [int(s.Status) for s, _ in assoc.send_c_get(
            get, StudyRootQueryRetrieveInformationModelGet)]
        assert finals[-1] == 0
    finally:
        assoc.release()
    return statuses, matches, received


async def test_pynetdicom_stores_finds_and_gets(serve: StartServe, tmp_path: Path) -> None:
    srv = await serve().ready()
    study, series = str(generate_uid()), str(generate_uid())
    files = tmp_path / "in"
    uids = {write(files, study, series) for _ in range(2)}
    statuses, matches, received = await asyncio.wait_for(
        asyncio.to_thread(_pynetdicom_session, srv.port, files, study), TIMEOUT)
    assert statuses == [0, 0]
    assert matches == [study]
    assert set(received) == uids

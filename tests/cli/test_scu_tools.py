"""The SCU tools against the real ``aiodimse serve`` (tools run in-process, in a thread,
since each runs its own event loop), and exit statuses 0/1/2/3."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, Event, evt
from aiodimse.cli.main import main
from aiodimse.services import MPPS
from aiodimse.services import STORAGE_COMMITMENT as STGCMT

from ._serve import free_port, write_instance
from .conftest import StartServe


async def run(*argv: str) -> int:
    return await asyncio.wait_for(asyncio.to_thread(main, list(argv)), 30)


async def test_mpps_with_the_scu_tools(
    serve: StartServe, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv = await serve("-aet", "ARCHIVE").ready()
    conn = ["127.0.0.1", str(srv.port), "-aec", "ARCHIVE", "-aet", "CT1"]
    create = Dataset()
    create.PerformedProcedureStepStatus = "IN PROGRESS"
    create.PatientID = "P1"
    json_file = tmp_path / "create.json"
    json_file.write_text(create.to_json())
    capsys.readouterr()
    # N-CREATE without an instance UID: the SCP assigns one.
    assert await run("n-create", *conn, "-c", MPPS, str(json_file), "--json") == 0
    created = json.loads(capsys.readouterr().out)
    uid = created["status_dataset"]["00001000"]["Value"][0]
    assert created["reply"]["00100020"]["Value"] == ["P1"]

    dcm_file = tmp_path / "set.dcm"
    update = Dataset()
    update.PatientID = "P2"
    update.save_as(dcm_file, implicit_vr=True, little_endian=True)
    assert await run("n-set", *conn, "-c", MPPS, "-i", uid, str(dcm_file)) == 0
    assert await run("n-set", *conn, "-c", MPPS, "-i", uid,
                     "-k", "PerformedProcedureStepStatus=DISCONTINUED") == 0
    capsys.readouterr()
    assert await run("n-set", *conn, "-c", MPPS, "-i", uid, "-k", "PatientID=P3") == 2
    assert "0x0110" in capsys.readouterr().out
    assert await run("n-get", *conn, "-c", MPPS, "-i", uid, "-t", "PatientID",
                     "-t", "(0040,0252)") == 0
    out = capsys.readouterr().out
    assert "N-GET status 0x0000 (Success)" in out
    assert "'P2'" in out and "'DISCONTINUED'" in out
    # Nothing answers N-DELETE or N-ACTION on MPPS: failure statuses, exit 2.
    assert await run("n-delete", *conn, "-c", MPPS, "-i", uid) == 2
    assert await run("n-action", *conn, "-c", MPPS, "-i", uid, "-a", "1") == 2


async def test_echo_repeat_concurrency_and_errors(
    serve: StartServe, capsys: pytest.CaptureFixture[str]
) -> None:
    srv = await serve("-aet", "ARCHIVE", "--allow", "GOOD").ready()
    assert await run("echo", "127.0.0.1", str(srv.port), "-aet", "GOOD",
                     "--repeat", "30", "--concurrency", "3") == 0
    assert "ECHO: 30 requests" in capsys.readouterr().out
    # Calling AE title not allowed: rejected, exit 3.
    assert await run("echo", "127.0.0.1", str(srv.port), "-aet", "BAD") == 3
    assert "reject" in capsys.readouterr().err.lower()
    # Nobody listening: exit 3.
    assert await run("echo", "127.0.0.1", str(free_port()), "--timeout", "2") == 3


async def test_n_event_report_proposes_the_scp_role(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got: list[tuple[int, str, bool]] = []
    ae = AE("RECEIVER")
    ae.add_supported_context(STGCMT, scp_role=True)

    async def on_report(event: Event) -> tuple[int, None]:
        got.append((event.event_type, event.event_information.TransactionUID,
                    event.context.as_scu))
        return 0x0001, None  # a warning: exit 1

    server = await ae.start_server(("127.0.0.1", 0),
                                   evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    async with server:
        uid = str(generate_uid())
        code = await run("n-event-report", "127.0.0.1", str(server.port), "-c", STGCMT,
                         "-i", "1.2.840.10008.1.20.1.1", "-e", "1", "-k", f"TransactionUID={uid}")
    assert code == 1
    assert got == [(1, uid, True)]  # the receiver is the SCU: we were the SCP


async def test_commit_tool_listen_port_and_bad_input(
    serve: StartServe, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--listen-port``: the tool releases at once and takes the report on a new
    association; the AE table of serve points at it."""
    listen = free_port()
    srv = await serve("-aet", "ARCHIVE", "--peer", f"MODALITY@127.0.0.1:{listen}").ready()
    missing = str(generate_uid())
    capsys.readouterr()
    code = await run("commit", "127.0.0.1", str(srv.port), "-aec", "ARCHIVE",
                     "-aet", "MODALITY", "-u", f"1.2.840.10008.5.1.4.1.1.2:{missing}",
                     "--listen-port", str(listen), "--listen-host", "127.0.0.1",
                     "--wait", "10")
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"failed    1.2.840.10008.5.1.4.1.1.2 {missing} 0x0112" in out
    assert "0 committed, 1 failed" in out
    # No instances, or a bad --uid: exit 3 before connecting.
    assert await run("commit", "127.0.0.1", str(srv.port)) == 3
    assert await run("commit", "127.0.0.1", str(srv.port), "-u", "nocolon") == 3


async def test_index_command_then_commit(
    serve: StartServe, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``aiodimse index`` fills the database that ``serve`` answers commitment from."""
    archive = tmp_path / "archive"
    uid = write_instance(archive)
    data = tmp_path / "data"
    assert await run("index", "--data", str(data), str(archive)) == 1  # no database yet
    assert await run("index", "--create", "--data", str(data), str(archive)) == 0
    assert "indexed 1, skipped 0" in capsys.readouterr().out
    srv = await serve("-aet", "ARCHIVE", data=data).ready()
    code = await run("commit", "127.0.0.1", str(srv.port), "-aec", "ARCHIVE",
                     str(archive / f"{uid}.dcm"), "--wait", "10")
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"committed 1.2.840.10008.5.1.4.1.1.2 {uid}" in out

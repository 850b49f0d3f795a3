"""UPS event reports end to end over a real ``aiodimse serve`` (``ups`` on by default:
workitems and Watch together): a global subscriber receives each change of a workitem
driven by the ``aiodimse ups`` tools, in order, and a report pending while it was down
reaches it after a restart.

The subscriber is the ``aiodimse ups watch`` tool, or an in-test listener; serve finds
its address in the AE table (``[ae.RIS]``), as storage commitment's requesters."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from aiodimse import AE
from aiodimse.services.ups.uids import GLOBAL_SUBSCRIPTION, UPS_PUSH, UPS_WATCH

from ..services.ups_fakes import Inbox, listen
from ._serve import free_port, wait_for
from .conftest import StartServe

AIODIMSE = (sys.executable, "-m", "aiodimse")
STATE, CANCEL_REQUESTED, PROGRESS, SCP_STATUS = 1, 2, 3, 4


async def ups(port: int, command: str, *argv: str) -> tuple[int, str, str]:
    """``aiodimse ups COMMAND`` against serve, bounded: (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *AIODIMSE, "ups", command, "127.0.0.1", str(port), "-aec", "ARCHIVE", "-aet", "RIS",
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _config(path: Path, subscriber_port: int, retry_initial: float) -> Path:
    path.write_text(
        '[server]\nae_title = "ARCHIVE"\n[limits]\nshutdown_grace = 2\n'
        f"[commitment]\nretry_initial = {retry_initial}\n"
        f'[ae.RIS]\nhost = "127.0.0.1"\nport = {subscriber_port}\n')
    return path


@asynccontextmanager
async def watch_tool(port: int) -> AsyncIterator[asyncio.StreamReader]:
    """``aiodimse ups watch --json`` as RIS on ``port`` once it listens; its stdout."""
    proc = await asyncio.create_subprocess_exec(
        *AIODIMSE, "ups", "watch", "--host", "127.0.0.1", "--port", str(port), "-aet", "RIS",
        "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert b"listening" in line, line
        yield proc.stdout
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _next(stdout: asyncio.StreamReader) -> dict[str, Any]:
    line = await asyncio.wait_for(stdout.readline(), 20)
    assert line, "the watch tool ended"
    report: dict[str, Any] = json.loads(line)
    return report


def _value(report: dict[str, Any], tag: str) -> Any:
    return report["information"][tag]["Value"][0]


async def test_a_global_subscriber_follows_workitems_driven_by_the_tools(
        serve: StartServe, tmp_path: Path) -> None:
    watch_port = free_port()
    config = _config(tmp_path / "serve.toml", watch_port, 0.2)
    srv = await serve("--config", str(config)).ready()
    async with watch_tool(watch_port) as reports:
        code, out, err = await ups(srv.port, "subscribe", "--global")
        assert code == 0, err

        code, out, err = await ups(srv.port, "create", "-k", "PatientID=P1")
        assert code == 0, err
        uid = out.strip()
        code, out, err = await ups(srv.port, "claim", uid, "--json")
        assert code == 0, err
        lock = json.loads(out)["transaction_uid"]
        progress = Dataset()
        step = Dataset()
        step.ProcedureStepProgress = "50"
        step.ProcedureStepProgressDescription = "half way"
        progress.ProcedureStepProgressInformationSequence = [step]
        (tmp_path / "progress.json").write_text(progress.to_json())
        code, out, err = await ups(srv.port, "set", uid, "-T", lock,
                                   "--dataset", str(tmp_path / "progress.json"))
        assert code == 0, err
        code, out, err = await ups(srv.port, "complete", uid, "-T", lock)
        assert code == 0, err

        got = [await _next(reports) for _ in range(4)]
        assert [(r["event_type"], r["instance"]) for r in got] == [
            (STATE, uid), (STATE, uid), (PROGRESS, uid), (STATE, uid)]
        assert [_value(got[i], "00741000") for i in (0, 1, 3)] == [
            "SCHEDULED", "IN PROGRESS", "COMPLETED"]
        (item,) = got[2]["information"]["00741002"]["Value"]
        assert item["00741004"]["Value"] == [50] and item["00741006"]["Value"] == ["half way"]
        assert {r["calling_aet"] for r in got} == {"ARCHIVE"}

        # a cancel request for a claimed workitem, sent on a Watch context: it reaches
        # the workitem service, which tells the subscriber (UPS Cancel Requested)
        code, out, err = await ups(srv.port, "create")
        assert code == 0, err
        other = out.strip()
        code, out, err = await ups(srv.port, "claim", other)
        assert code == 0, err
        request = Dataset()
        request.ReasonForCancellation = "wrong patient"
        request.ContactDisplayName = "Dr. Who"
        requester = AE("RIS")
        requester.add_requested_context(UPS_WATCH)
        async with requester.associate("127.0.0.1", srv.port, ae_title="ARCHIVE") as assoc:
            status, _ = await assoc.send_n_action(request, 2, UPS_PUSH, other, UPS_WATCH)
        assert int(status.Status) == 0
        got = [await _next(reports) for _ in range(3)]
        assert [(r["event_type"], r["instance"]) for r in got] == [
            (STATE, other), (STATE, other), (CANCEL_REQUESTED, other)]
        cancel = got[2]["information"]
        assert cancel["00741238"]["Value"] == ["wrong patient"]
        assert cancel["00741236"]["Value"] == ["RIS"]  # Requesting AE
        code, out, err = await ups(srv.port, "get", other, "-t", "ProcedureStepState", "--json")
        assert code == 0 and "IN PROGRESS" in out  # the performer decides

        # serve stopping tells its subscribers: SCP Status Change, GOING DOWN
        assert srv.stop() == 0
        going = await _next(reports)
        assert (going["event_type"], going["instance"]) == (SCP_STATUS, GLOBAL_SUBSCRIPTION)
        assert _value(going, "00741242") == "GOING DOWN"


async def test_a_report_pending_at_a_restart_reaches_the_subscriber_later(
        serve: StartServe, tmp_path: Path) -> None:
    ris_port = free_port()
    config = _config(tmp_path / "serve.toml", ris_port, 60)
    first = await serve("--config", str(config)).ready()
    code, _, err = await ups(first.port, "subscribe", "--global")
    assert code == 0, err
    code, out, err = await ups(first.port, "create", "-k", "PatientID=P2")  # RIS is down
    assert code == 0, err
    uid = out.strip()
    await wait_for(lambda: "report not delivered" in first.log(), 20, "a failed attempt")
    assert first.stop() == 0  # graceful: GOING DOWN is queued for RIS too, undelivered

    _config(config, ris_port, 0.2)
    second = await serve("--config", str(config), port=first.port).ready()
    await wait_for(lambda: "report not delivered" in second.log(), 20, "RIS still down")
    inbox = Inbox()
    ris = await listen(inbox, "RIS", ris_port)
    try:
        await inbox.wait_for(3)
        await asyncio.sleep(0.5)  # nothing more comes (delivered once)
        reports = [(kind, instance) for kind, instance, *_ in inbox.reports]
        assert sorted(reports) == sorted([(STATE, uid), (SCP_STATUS, GLOBAL_SUBSCRIPTION),
                                          (SCP_STATUS, GLOBAL_SUBSCRIPTION)])
        statuses = sorted(str(r[2].SCPStatus) for r in inbox.reports if r[0] == SCP_STATUS)
        assert statuses == ["GOING DOWN", "RESTARTED"]
        (state,) = [r[2] for r in inbox.reports if r[0] == STATE]
        assert state.ProcedureStepState == "SCHEDULED"
    finally:
        ris.close()
        await ris.wait_closed()
    assert second.stop() == 0

"""Storage commitment end to end against the real ``aiodimse serve`` process.

The requester is our library, the ``aiodimse commit`` tool, or pynetdicom (in a
worker thread); the report receiver is an in-test listener accepting the SCP role.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, Event, evt
from aiodimse.services import STORAGE_COMMITMENT as STGCMT
from aiodimse.services import STORAGE_COMMITMENT_INSTANCE as STGCMT_INSTANCE

from ._serve import CT, free_port, wait_for, write_instance
from .conftest import StartServe

Report = tuple[int, Dataset, str]


def _request(transaction_uid: str, refs: list[tuple[str, str]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    items = []
    for cls, inst in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = cls
        item.ReferencedSOPInstanceUID = inst
        items.append(item)
    ds.ReferencedSOPSequence = items
    return ds


@asynccontextmanager
async def listener(port: int, title: str = "MODALITY") -> AsyncIterator[asyncio.Queue[Report]]:
    """Our AE accepting the SCP role for commitment: queues (event type, info, caller)."""
    reports: asyncio.Queue[Report] = asyncio.Queue()
    ae = AE(title)
    ae.add_supported_context(STGCMT, scp_role=True)

    async def on_report(event: Event) -> tuple[int, None]:
        await reports.put(
            (event.event_type, event.event_information, event.assoc.requestor.ae_title)
        )
        return 0x0000, None

    server = await ae.start_server(
        ("127.0.0.1", port), evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
    )
    try:
        yield reports
    finally:
        await server.shutdown(1.0)


async def request_and_release(port: int, transaction_uid: str, refs: list[tuple[str, str]],
                              title: str = "MODALITY") -> int:
    """N-ACTION, then release at once (the report must come on a new association)."""
    ae = AE(title)
    ae.add_requested_context(STGCMT)
    async with ae.associate("127.0.0.1", port, ae_title="ARCHIVE") as assoc:
        status, _ = await assoc.send_n_action(
            _request(transaction_uid, refs), 1, STGCMT, STGCMT_INSTANCE
        )
    return int(status.Status)


async def test_commit_tool_present_and_missing(serve: StartServe, tmp_path: Path) -> None:
    """The real ``aiodimse commit`` process: report on the same association, 0x0112."""
    archive = tmp_path / "archive"
    present = {write_instance(archive), write_instance(archive / "sub")}
    srv = await serve("-aet", "ARCHIVE", "--index-dir", str(archive)).ready()
    missing = str(generate_uid())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiodimse", "commit", "127.0.0.1", str(srv.port),
        "-aec", "ARCHIVE", "-aet", "MODALITY", str(archive), "-u", f"{CT}:{missing}",
        "--wait", "10", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 1, err.decode()
    result = json.loads(out)
    assert result["event_type"] == 2
    assert result["received_on"] == "same association"
    assert {c["instance"] for c in result["committed"]} == present
    assert result["failed"] == [
        {"class": CT, "instance": missing, "reason": 0x0112,
         "reason_text": "No such object instance"}
    ]


async def test_report_on_new_association_after_release(
    serve: StartServe, tmp_path: Path
) -> None:
    """Configured by TOML (AE table, same_association off): the requester released,
    so the server connects back proposing the SCP role."""
    back_port = free_port()
    config = tmp_path / "serve.toml"
    config.write_text(
        '[server]\nae_title = "ARCHIVE"\n'
        "[commitment]\nsame_association = false\nretry_initial = 0.2\n"
        f'[ae.MODALITY]\nhost = "127.0.0.1"\nport = {back_port}\n'
    )
    archive = tmp_path / "archive"
    present = write_instance(archive)
    srv = await serve("--config", str(config), "--index-dir", str(archive)).ready()
    transaction = str(generate_uid())
    async with listener(back_port) as reports:
        assert await request_and_release(srv.port, transaction, [(CT, present)]) == 0
        event_type, info, caller = await asyncio.wait_for(reports.get(), 10)
    assert (event_type, caller) == (1, "ARCHIVE")
    assert info.TransactionUID == transaction
    assert [r.ReferencedSOPInstanceUID for r in info.ReferencedSOPSequence] == [present]
    assert "FailedSOPSequence" not in info


async def test_report_retried_until_requester_listens(serve: StartServe) -> None:
    back_port = free_port()
    srv = await serve("-aet", "ARCHIVE", "--peer", f"MODALITY@127.0.0.1:{back_port}",
                      "--retry-initial", "0.2").ready()
    transaction = str(generate_uid())
    missing = str(generate_uid())
    assert await request_and_release(srv.port, transaction, [(CT, missing)]) == 0
    await wait_for(lambda: "attempt=2" in srv.log(), 10, "two failed attempts")
    async with listener(back_port) as reports:
        event_type, info, _ = await asyncio.wait_for(reports.get(), 10)
    assert event_type == 2
    assert info.TransactionUID == transaction
    (failed,) = info.FailedSOPSequence
    assert (failed.ReferencedSOPInstanceUID, failed.FailureReason) == (missing, 0x0112)


async def test_pending_report_survives_a_crash(serve: StartServe, tmp_path: Path) -> None:
    """Accepted, not delivered, server killed -9: the next start delivers it once."""
    back_port = free_port()
    args = ("-aet", "ARCHIVE", "--peer", f"MODALITY@127.0.0.1:{back_port}",
            "--retry-initial", "60")
    first = await serve(*args).ready()
    transaction = str(generate_uid())
    assert await request_and_release(first.port, transaction, [(CT, "1.2.3.4")]) == 0
    await wait_for(lambda: "report not delivered" in first.log(), 10, "a failed attempt")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    async with listener(back_port) as reports:
        second = await serve(*args, port=first.port).ready()
        event_type, info, _ = await asyncio.wait_for(reports.get(), 10)
        assert (event_type, info.TransactionUID) == (2, transaction)
        assert "1 N-EVENT-REPORTs pending" in second.log()
        await wait_for(lambda: "report delivered" in second.log(), 5, "the delivery log")
        await asyncio.sleep(0.3)
        assert reports.empty()  # delivered once
    assert second.stop() == 0  # SIGTERM: graceful


async def test_duplicate_transaction_uid_refused(serve: StartServe) -> None:
    srv = await serve("-aet", "ARCHIVE").ready()
    transaction = str(generate_uid())
    ae = AE("MODALITY")
    ae.add_requested_context(STGCMT)
    async with ae.associate("127.0.0.1", srv.port, ae_title="ARCHIVE") as assoc:
        request = _request(transaction, [(CT, "1.2.3")])
        first, _ = await assoc.send_n_action(request, 1, STGCMT, STGCMT_INSTANCE)
        again, _ = await assoc.send_n_action(request, 1, STGCMT, STGCMT_INSTANCE)
        other, _ = await assoc.send_n_action(request, 2, STGCMT, STGCMT_INSTANCE)
    assert (first.Status, again.Status, other.Status) == (0x0000, 0x0110, 0x0123)


async def test_unlisted_requester_warned_or_refused(serve: StartServe, tmp_path: Path) -> None:
    """A request from an AE not in the AE table: one WARNING when it comes; with
    ``refuse_unlisted_ae`` it is refused with 0x0124 (Refused: not authorized)."""
    srv = await serve("-aet", "ARCHIVE", "--peer", "MODALITY@127.0.0.1:9").ready()
    for _ in range(2):
        assert await request_and_release(srv.port, str(generate_uid()), [(CT, "1.2.3")],
                                         title="STRANGER") == 0
    await wait_for(lambda: "not in the AE table: its reports" in srv.log(), 10, "the warning")
    assert srv.log().count("calling_aet='STRANGER', which is not in the AE table") == 1
    config = tmp_path / "serve.toml"
    config.write_text('[server]\nae_title = "ARCHIVE"\n[commitment]\nrefuse_unlisted_ae = true\n'
                      '[ae.MODALITY]\nhost = "127.0.0.1"\nport = 9\n')
    strict = await serve("--config", str(config), data=tmp_path / "strict").ready()
    assert await request_and_release(strict.port, str(generate_uid()), [(CT, "1.2.3")],
                                     title="STRANGER") == 0x0124
    assert await request_and_release(strict.port, str(generate_uid()), [(CT, "1.2.3")]) == 0

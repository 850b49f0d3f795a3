"""``aiodimse commit`` without --listen-port stops when the peer ends the association
before its report (as an archive that always reports on a new association does),
instead of waiting out --wait, and says where the report may come."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from aiodimse import AE, Event, evt
from aiodimse.services import STORAGE_COMMITMENT as STGCMT

from .test_scu_tools import run


async def test_commit_stops_when_the_peer_aborts_before_reporting(
        capsys: pytest.CaptureFixture[str]) -> None:
    async def accept_then_abort(event: Event) -> tuple[int, Any]:
        asyncio.get_running_loop().call_later(0.2, event.assoc.abort)
        return 0x0000, None

    scp = AE("ARCHIVE")
    scp.add_supported_context(STGCMT)
    server = await scp.start_server(("127.0.0.1", 0),
                                    evt_handlers=[(evt.EVT_N_ACTION, accept_then_abort)])
    async with server:
        start = time.monotonic()
        code = await run("commit", "127.0.0.1", str(server.port), "-aec", "ARCHIVE",
                         "--uid", "1.2.840.10008.5.1.4.1.1.2:1.2.3.4", "--wait", "30")
        took = time.monotonic() - start
    assert code == 3
    err = capsys.readouterr().err
    assert "the peer ended the association before its report came" in err
    assert "--listen-port" in err
    assert took < 20  # not the whole --wait (a hang guard, not a speed figure)

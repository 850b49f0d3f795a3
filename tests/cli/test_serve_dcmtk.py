"""DCMTK's echoscu (not pynetdicom's script of that name) against ``aiodimse serve``."""

from __future__ import annotations

import asyncio

from ..dcmtk_tools import dcmtk
from .conftest import StartServe

ECHOSCU = dcmtk("echoscu")


async def _echoscu(port: int, called: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        ECHOSCU, "-v", "-aet", "DCMTK", "-aec", called, "127.0.0.1", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_dcmtk_echoscu_and_called_aet_check(serve: StartServe) -> None:
    srv = await serve("-aet", "ARCHIVE", "--require-called-aet").ready()
    code, out = await _echoscu(srv.port, "ARCHIVE")
    assert code == 0, out
    assert "Received Echo Response (Success)" in out
    code, out = await _echoscu(srv.port, "SOMEONE")
    assert code != 0
    assert "Called AE Title Not Recognized" in out

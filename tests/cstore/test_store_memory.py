"""A 200 MB instance streamed both ways: the receiving server's peak memory grows by
less than 64 MB (measured in a subprocess: its peak RSS over its RSS when listening)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiodimse import AE

from ._big import write_big
from ._files import CT

SIZE = 200 * 1024 * 1024
LIMIT = 64 * 1024 * 1024


@pytest.mark.asyncio
async def test_a_200_mb_instance_is_received_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.dcm"
    write_big(path, SIZE)
    spool = tmp_path / "spool"
    spool.mkdir()
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.cstore.memory_server", str(spool)], cwd=root, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = int(proc.stdout.readline().split()[1])
        ae = AE("BIG_SCU")
        ae.add_requested_context(CT, "1.2.840.10008.1.2.1")
        ae.dimse_timeout = 120.0
        async with ae.associate("127.0.0.1", port, ae_title="BIG_SCP") as assoc:
            status = await assoc.send_c_store(path)
        assert status.Status == 0x0000
        _word, size, growth = proc.stdout.readline().split()
        assert int(size) > SIZE  # the whole instance reached the file
        assert int(growth) < LIMIT, f"peak RSS grew by {int(growth) / 2**20:.1f} MiB"
        assert os.listdir(spool) == []  # removed after the handler
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

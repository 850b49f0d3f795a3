"""Where DCMTK's tools are: ``$DCMTK_BIN``, else the first on PATH (or /usr/bin) that
is a compiled program, not pynetdicom's Python console script of the same name; and
running them, bounded, from the tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

__all__ = ["dcmtk", "free_port", "run_program", "storescp"]


def _is_program(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def dcmtk(name: str) -> str:
    """The full path of DCMTK's ``name`` (``echoscu``, ``storescp``...)."""
    dirs = [os.environ.get("DCMTK_BIN", ""), *os.environ.get("PATH", "").split(os.pathsep),
            "/usr/bin", "/usr/local/bin"]
    for folder in filter(None, dirs):
        candidate = Path(folder) / name
        if os.access(candidate, os.X_OK) and _is_program(candidate):
            return str(candidate)
    raise FileNotFoundError(f"DCMTK's {name} was not found (set DCMTK_BIN, or install dcmtk)")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a program that takes a port number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_program(*argv: str, timeout: float = 20.0, cwd: Path | None = None
                      ) -> tuple[int, str]:
    """Run a program, bounded; kill it if it overruns. Returns (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@contextlib.asynccontextmanager
async def storescp(*options: str) -> AsyncIterator[int]:
    """DCMTK's storescp with ``options`` on a free port, once it listens; yields the
    port; killed on exit."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        dcmtk("storescp"), *options, str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(400):  # 10 s at most (a hang guard)
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if proc.returncode is not None:
                    raise AssertionError(f"storescp exited with {proc.returncode}") from None
                await asyncio.sleep(0.025)
                continue
            writer.close()
            break
        else:
            raise AssertionError("storescp did not start listening")
        yield port
    finally:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.wait(), 10)

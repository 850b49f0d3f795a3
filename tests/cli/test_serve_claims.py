"""``serve`` refuses a data directory or a port another server holds, and a data
directory it cannot write, in one line with exit 1."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import StartServe


def _serve(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiodimse", "serve", "--host", "127.0.0.1",
                           *argv], capture_output=True, text=True, timeout=60, check=False)


async def test_a_second_server_on_the_same_data_directory_is_refused(
        serve: StartServe, tmp_path: Path) -> None:
    first = await serve("--workers", "2").ready(count=2)
    proc = _serve("--data", str(first.data), "--port", "0")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"aiodimse serve: data directory {first.data} is in use by aiodimse serve pid "
        f"{first.proc.pid if first.proc else '?'} (port {first.port}); stop it, or give "
        "this server its own --data")


async def test_a_second_workers_group_on_the_same_port_is_refused(
        serve: StartServe, tmp_path: Path) -> None:
    """SO_REUSEPORT would let it in, taking half the connections with another AE title."""
    first = await serve("--workers", "2").ready(count=2)
    proc = _serve("--data", str(tmp_path / "other"), "--port", str(first.port),
                  "--workers", "2", "-aet", "OTHER")
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert line.startswith(f"aiodimse serve: port {first.port} is already in use by pid ")
    assert "aiodimse serve" in line and "\n" not in line


@contextlib.contextmanager
def _read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs (read-only for root too, as CI runs)."""
    mount = tmp_path / f"ro-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        mount.chmod(0o555)  # not root, or no mount here: permissions hold for non-root
    try:
        yield mount
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", str(mount)], check=True)


def test_a_data_directory_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    with _read_only_folder(tmp_path) as folder:
        probe = folder / "probe"
        with contextlib.suppress(OSError):
            probe.mkdir()
        if probe.exists():
            pytest.fail("could not make a read-only folder for the test")
        proc = _serve("--data", str(folder / "data"), "--port", "0")
    assert proc.returncode == 1
    assert proc.stderr.startswith("aiodimse serve: cannot serve: ")
    assert str(folder / "data") in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1

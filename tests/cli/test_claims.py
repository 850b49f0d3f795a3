"""One server per data directory and per port: the second is refused in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aiodimse.cli.claims import ClaimError, DataDirLock, probe_port, who_listens


def test_a_second_lock_on_a_data_directory_names_the_holder(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire(11112)
    code = (
        "import sys\n"
        "from aiodimse.cli.claims import ClaimError, DataDirLock\n"
        "try:\n"
        f"    DataDirLock({str(tmp_path)!r}).acquire(11113)\n"
        "except ClaimError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stdout.strip() == (
        f"data directory {tmp_path} is in use by aiodimse serve pid {os.getpid()} "
        "(port 11112); stop it, or give this server its own --data")
    first.release()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0  # released: free again


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    code = (f"from aiodimse.cli.claims import DataDirLock\n"
            f"DataDirLock({str(tmp_path)!r}).acquire(1)\n"
            f"import os; os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code], timeout=60, check=True)
    with DataDirLock(tmp_path) as lock:
        lock.acquire(2)
        assert (tmp_path / "aiodimse.lock").read_text() == f"{os.getpid()} 2\n"


def test_a_port_with_a_reuse_port_listener_is_refused_naming_it() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert who_listens(port) is not None
        assert f"pid {os.getpid()} " in str(who_listens(port))
        with pytest.raises(ClaimError, match=f"port {port} is already in use by pid"):
            probe_port("127.0.0.1", port)
    probe_port("127.0.0.1", port)  # closed: free
    probe_port("127.0.0.1", 0)  # any port: nothing to probe

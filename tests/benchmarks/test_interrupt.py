"""benchmarks/run.py stopped by SIGTERM: no server or load process outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _children(pid: int) -> dict[int, str]:
    """The live processes whose parent is ``pid``, with their command lines."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # fields after "(comm)": state, ppid
        if ppid == pid:
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_the_run_and_every_server_it_started(tmp_path: Path) -> None:
    md = tmp_path / "run.md"
    proc = subprocess.Popen(
        [sys.executable, "benchmarks/run.py", "--quick", "--only", "1a", "--no-pin",
         "--md", str(md), "--json", str(tmp_path / "run.json")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    seen: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            seen.update(_children(proc.pid))
            if sum("benchmarks.servers" in c for c in seen.values()) >= 3:
                break
            time.sleep(0.05)
        servers = [pid for pid, c in seen.items() if "benchmarks.servers" in c]
        assert len(servers) >= 3, (seen, proc.poll())
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    end = time.monotonic() + 10  # stopped before run.py exits; reaped by then at most
    while time.monotonic() < end and any(_alive(pid) for pid in seen):
        time.sleep(0.05)
    left = {pid: seen[pid] for pid in seen if _alive(pid)}
    for pid in left:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, left
    assert proc.returncode == 130, out[-2000:]  # as an interrupted run reports itself
    assert "interrupted" in out and md.exists()

"""benchmarks/ups_fanout.py runs end to end on a few subscribers (its numbers are
read, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_fanout_benchmark_delivers_to_every_subscriber() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/ups_fanout.py", "--subscribers", "5",
         "--concurrency", "1,4", "--json"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [(r["subscribers"], r["concurrency"]) for r in rows] == [(5, 1), (5, 4)]
    assert all(r["last_s"] >= r["first_s"] > 0 for r in rows)
    assert "pynetdicom" in done.stdout

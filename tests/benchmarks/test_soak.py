"""benchmarks/soak.py runs briefly and prints its figures (never judged here: timings)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_soak_runs_and_prints_its_figures() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--seconds", "3", "--hostile", "10",
         "--addresses", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    attempts = re.search(r"^echo attempts: (\d+)  succeeded: (\d+)$", out, re.M)
    assert attempts is not None, out
    assert 0 <= int(attempts[2]) <= int(attempts[1]) and int(attempts[1]) > 0
    assert re.search(r"^echo success: \d+\.\d %$", out, re.M), out
    assert re.search(r"^echo latency p50: (\d+\.\d ms|n/a)  p99: (\d+\.\d ms|n/a)$", out,
                     re.M), out
    assert re.search(r"^server RSS peak: \d+\.\d MB$", out, re.M), out
    opened = re.search(r"^hostile connections opened: (\d+) \(silent \d+ trickle-rq \d+ "
                       r"trickle-pdata \d+ tiny-pdvs \d+ oversize \d+\)", out, re.M)
    assert opened is not None and int(opened[1]) >= 10, out  # every one was held open

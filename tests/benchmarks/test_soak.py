"""benchmarks/soak.py runs briefly and prints its figures (never judged here: timings)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_soak_runs_and_prints_its_figures() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.soak", "--seconds", "3", "--hostile", "10",
         "--addresses", "2"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its server and hostile processes go with it on a hang
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
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

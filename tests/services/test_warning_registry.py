"""No warnings registry keeps a peer's invalid values (issue 18: +173 MiB in 2,000 requests).

pydicom's validation warnings carry the invalid value, and Python keeps every distinct
warning text it showed. The services judge values before pydicom converts them, so
no warning is raised for a peer's value at all. Measured in a subprocess, under
Python's default warning filters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_invalid_values_leave_nothing_in_the_warnings_registries() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "tests.services._registry_peer", "40"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # 40 requests of each kind, each with 20 KB invalid values: on bf678e1 the
    # registries grew by about 800 kB (both answered 0x0000; 4 MB for 200 of each)
    assert result["after"] - result["before"] < 10_000, result
    assert result["statuses"] == {"n-create 0x0106": 40, "n-action 0x0115": 40}

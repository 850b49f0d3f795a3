"""Every ```python block of the documentation's pages and the README is a whole
program that runs as written (to exit status 0, within a minute, on loopback).

docs/internals.md is left to tests/services (its "How to add a service" blocks are
parts of tests/services/example_service.py, which those tests run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md")
               if p.name != "internals.md" and "_build" not in p.parts)
BLOCKS = [(page, n, code) for page in [*PAGES, ROOT / "README.md"]
          for n, code in enumerate(re.findall(r"^```python\n(.*?)^```", page.read_text(),
                                              re.S | re.M))]


def test_the_pages_have_blocks() -> None:
    pages = {page.name for page, _, _ in BLOCKS}
    assert {"handlers.md", "porting.md", "README.md"} <= pages


@pytest.mark.parametrize(("page", "n", "code"), BLOCKS,
                         ids=[f"{p.relative_to(ROOT)}#{n}" for p, n, _ in BLOCKS])
def test_block_runs(page: Path, n: int, code: str, tmp_path: Path) -> None:
    assert "11112" not in code, "a block binds a fixed port: use port 0"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr

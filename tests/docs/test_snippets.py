"""Every ```python block of the documentation's pages and the README is a whole
program that runs as written (to exit status 0, within a minute, on loopback); where
the page shows what it prints (a ```text block after it, the words between saying
"prints"), it prints that.

docs/internals.md's blocks ("How to add a service") are parts of
tests/services/example_service.py, which tests/services runs: its
test_the_docs_show_the_code_the_tests_run checks that they are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs._pages import ROOT, Block, blocks, claim, pages, shape

INTERNALS = "docs/internals.md"


def programs() -> list[tuple[Block, Block | None, bool]]:
    """Each python block of the pages (internals.md aside), with its output block and
    whether that shows lines among others ("prints, among ...": a log)."""
    found = []
    for page in pages():
        text = page.read_text()
        lines = text.splitlines()
        listed = blocks(page)
        for n, block in enumerate(listed):
            if block.language != "python" or block.page == INTERNALS:
                continue
            after = listed[n + 1] if n + 1 < len(listed) else None
            output, among = None, False
            if after is not None and after.language == "text":
                between = "\n".join(lines[block.line + block.code.count("\n"):after.line - 1])
                output = after if "prints" in between else None
                among = "among" in between
            found.append((block, output, among))
    return found


PROGRAMS = programs()
for _block, _output, _ in PROGRAMS:
    claim(_block.page, _block.number, "test_block_runs")
    if _output is not None:
        claim(_output.page, _output.number, "test_block_runs")
for _block in blocks(ROOT / INTERNALS):
    if _block.language == "python":
        claim(INTERNALS, _block.number, "tests/services/test_service_routing.py")


def test_the_pages_have_blocks() -> None:
    pages_of = {Path(block.page).name for block, _, _ in PROGRAMS}
    assert {"handlers.md", "porting.md", "querying.md", "storing.md",
            "README.md"} <= pages_of
    outputs = {output.page for _, output, _ in PROGRAMS if output is not None}
    assert {"docs/querying.md", "docs/logging.md"} <= outputs


def test_internals_blocks_are_how_to_add_a_service() -> None:
    """The blocks left to tests/services are all in the section it checks."""
    text = (ROOT / INTERNALS).read_text()
    section = text.split("## How to add a service", 1)[1].split("\n## ", 1)[0]
    for block in blocks(ROOT / INTERNALS):
        assert block.language != "python" or block.code in section, block.line


@pytest.mark.parametrize(("block", "output", "among"), PROGRAMS,
                         ids=[f"{b.page}:{b.line}" for b, _, _ in PROGRAMS])
def test_block_runs(block: Block, output: Block | None, among: bool, tmp_path: Path) -> None:
    assert "11112" not in block.code, "a block binds a fixed port: use port 0"
    done = subprocess.run([sys.executable, "-c", block.code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    if output is not None:
        printed = done.stdout + (done.stderr if among else "")
        assert shape(output.code, among).fullmatch(printed), printed

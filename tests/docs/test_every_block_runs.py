"""Every code block of the documentation is run (or checked) by a test, or marked on
its page as not run, with why (tests/docs/_pages.py): a new example cannot go
silently unrun."""

from __future__ import annotations

from tests.docs import (  # noqa: F401 - imported for the blocks they claim
    test_examples,
    test_getting_started,
    test_pages,
    test_reference,
    test_snippets,
)
from tests.docs._pages import ROOT, blocks, claimed, pages


def test_every_block_is_run_or_marked() -> None:
    runs = claimed()
    unrun, both = [], []
    for page in pages():
        for block in blocks(page):
            key = (block.page, block.number)
            if key in runs and block.not_run:
                both.append(f"{block.page}:{block.line}")
            elif key not in runs and not block.not_run:
                unrun.append(f"{block.page}:{block.line} ({block.language or 'plain'})")
    assert not both, f"marked not run, yet run: {both}"
    assert not unrun, ("blocks no test runs: run them in tests/docs, or mark them "
                       f"'% not run: REASON' on the line before: {unrun}")


def test_the_claims_are_blocks_and_the_marks_say_why() -> None:
    known = {(b.page, b.number) for p in pages() for b in blocks(p)}
    assert set(claimed()) <= known
    for page in pages():
        for block in blocks(page):
            if block.not_run is not None:
                assert len(block.not_run.split()) >= 3, f"{block.page}:{block.line}: why?"
    # the pages that carry commands are run, not only marked
    run_pages = {page for page, _ in claimed()}
    assert {"docs/archive.md", "docs/cli.md", "docs/ups.md", "docs/getting-started.md",
            "docs/deployment.md", "README.md"} <= run_pages
    assert (ROOT / "docs" / "architecture.md").read_text().count("% not run: ") >= 1

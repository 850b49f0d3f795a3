"""The code blocks of the documentation, and which test runs each.

A block is a fenced block of a page under docs/ or of the README (not a directive:
those are built by Sphinx), or an indented one (4 spaces, after a blank line). A test that runs one
takes its code with ``claim``, at import, which records it; a block no test runs
is marked on its page, on the line before it, with why:

- docs/: a MyST comment, ``% not run: REASON`` (not rendered);
- README.md: ``<!-- not run: REASON -->`` (not rendered by GitHub); before an
  indented block, the marker and a blank line.

test_every_block_runs.py checks that every block is claimed or marked, never both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARK = re.compile(r"^(?:% not run: (.+)|<!-- not run: (.+?) -->)$")

__all__ = ["Block", "ROOT", "DOCS", "blocks", "claim", "claimed", "pages"]


@dataclass(frozen=True)
class Block:
    page: str       # relative to the checkout: docs/archive.md, README.md
    number: int     # its place among the page's blocks, from 0
    language: str   # the fence's info word ("sh", "python", "" ...), or "indented"
    code: str
    line: int       # of its first line of code, from 1
    not_run: str | None  # the reason its marker gives


CLAIMED: dict[tuple[str, int], str] = {}


def pages() -> list[Path]:
    found = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)
    return [*found, ROOT / "README.md"]


def _marker(lines: list[str], index: int) -> str | None:
    """The reason of a marker on the line before ``index``, if any."""
    if index == 0:
        return None
    found = MARK.match(lines[index - 1].strip())
    return (found[1] or found[2]) if found else None


def blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    name = str(page.relative_to(ROOT))
    found: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            start = i
            while i + 1 < len(lines) and (lines[i + 1].startswith("    ") or (
                    not lines[i + 1].strip() and i + 2 < len(lines)
                    and lines[i + 2].startswith("    "))):
                i += 1
            code = "\n".join(line[4:] for line in lines[start:i + 1]) + "\n"
            reason = _marker(lines, start - 1) if start > 1 else None
            found.append(Block(name, len(found), "indented", code, start + 1, reason))
            i += 1
            continue
        opened = re.match(r"^(`{3,}|~{3,})\s*(\S*)", lines[i])
        if not opened:
            i += 1
            continue
        fence, info = opened.groups()
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if not info.startswith("{"):  # a directive is Sphinx's, built with -W
            code = "\n".join(lines[i + 1:end]) + "\n"
            found.append(Block(name, len(found), info, code, i + 2, _marker(lines, i)))
        i = end + 1
    return found


def claim(page: str, number: int, by: str) -> str:
    """The code of block ``number`` of ``page``, recorded as run by ``by`` (a test)."""
    block = blocks(ROOT / page)[number]
    assert block.not_run is None, f"{page} block {number} is marked not run, yet {by} runs it"
    CLAIMED[(page, number)] = by
    return block.code


def claimed() -> dict[tuple[str, int], str]:
    return CLAIMED


def shape(expected: str, among: bool = False) -> re.Pattern[str]:
    """What an output block of a page allows: its lines, where ``...`` stands for
    the rest of a word (a UID, a port) and a line ``...`` alone for any lines.
    ``among``: a log's lines, other lines between them, their numbers (ports,
    durations) any."""
    parts = []
    for line in expected.rstrip("\n").splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        words = [re.escape(part) for part in re.split(r"\.\.\.\S*", line)]
        if among:
            words = [re.sub(r"\d+", r"\\d+", word) for word in words]
        parts.append(r"\S*".join(words) + r"\n")
    between = r"(?:[^\n]*\n)*?" if among else ""
    return re.compile(between + between.join(parts) + between)

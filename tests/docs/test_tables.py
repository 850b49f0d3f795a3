"""docs/_ext/aiodimse_tables.py renders the code's own tables as real tables, row for
row (a small site of its directives, built with warnings as errors), and refuses
what would let a page drift from the code."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

from aiodimse import requests, status
from aiodimse.ul.states import Event, State
from aiodimse.ul.table import TRANSITIONS

EXT = Path(__file__).resolve().parents[2] / "docs" / "_ext"
ROOT = EXT.parents[1]

CONF = f"""
import sys
sys.path[:0] = [{str(ROOT)!r}, {str(EXT)!r}]
extensions = ["myst_parser", "aiodimse_tables"]
html_theme = "basic"
"""


def build(tmp_path: Path, page: str) -> tuple[int, str]:
    """Build a one-page site; (exit status, the page's HTML or the errors)."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "conf.py").write_text(CONF)
    (src / "index.md").write_text(page)
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(src),
                           str(out)], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        return done.returncode, done.stderr
    return 0, (out / "index.html").read_text()


def rows(page: str) -> list[list[str]]:
    """Each table row's cells, as text."""
    found = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        found.append([" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split())
                      for c in cells])
    return found


def test_state_table_is_table_9_10(tmp_path: Path) -> None:
    code, page = build(tmp_path, "# T\n\n```{aiodimse-state-table}\n```\n")
    assert code == 0, page
    table = rows(page)
    assert table[0] == ["Event", *(f"Sta{s.value}" for s in State)]
    assert len(table) == 1 + len(Event)
    for event, cells in zip(Event, table[1:], strict=True):
        assert cells[0] == f"Evt{event.value}"
        for state, cell in zip(State, cells[1:], strict=True):
            action = TRANSITIONS.get((state, event))
            assert cell == (action.value if action else "")


def test_status_tables(tmp_path: Path) -> None:
    page_text = ("# T\n\n```{aiodimse-status-table}\n```\n\n"
                 "```{aiodimse-status-table}\n0x0123 when asked\n0xB000 its own\n```\n"
                 "\n```{aiodimse-unhandled-table}\n```\n")
    code, page = build(tmp_path, page_text)
    assert code == 0, page
    table = rows(page)
    general = [[f"0x{c:04X}", m, status.code_to_category(c).value]
               for c, m in sorted(status.GENERAL_STATUS.items())]
    n = len(general)
    assert table[1:1 + n] == general
    assert table[2 + n:4 + n] == [["0x0123", "No such action", "Failure", "when asked"],
                                  ["0xB000", "(warning, service-specific)", "Warning",
                                   "its own"]]
    unhandled = table[5 + n:]
    assert [r[0] for r in unhandled] == [k.event.name for k in requests._KINDS.values()]
    assert ["EVT_C_ECHO", "C-ECHO-RQ", "status", "0x0000 Success",
            "0x0110 Processing failure"] in unhandled


def test_a_status_the_library_does_not_know_fails_the_build(tmp_path: Path) -> None:
    code, errors = build(tmp_path, "# T\n\n```{aiodimse-status-table}\n0x0999 made up\n```\n")
    assert code != 0
    assert "0x0999 is not one aiodimse knows" in errors

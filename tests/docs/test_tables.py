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

import pytest
from pydicom.dataset import Dataset

from aiodimse import requests, status
from aiodimse.archive import MODELS, STUDY_ROOT_FIND, QueryError
from aiodimse.archive.query import parse_find
from aiodimse.presentation import ALL_TRANSFER_SYNTAXES
from aiodimse.services.storage import STORAGE_CLASSES
from aiodimse.store.records import KEYS
from aiodimse.ul.states import Event, State
from aiodimse.ul.table import TRANSITIONS

EXT = Path(__file__).resolve().parents[2] / "docs" / "_ext"
ROOT = EXT.parents[1]
CT = "1.2.840.10008.5.1.4.1.1.2"

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
    assert [r[0] for r in unhandled] == [
        k.event.name for k in (*requests._KINDS.values(), *requests._APART.values())]
    assert ["EVT_C_ECHO", "C-ECHO-RQ", "status", "0x0000 Success",
            "0x0110 Processing failure"] in unhandled
    assert ["EVT_C_STORE", "C-STORE-RQ", "status", "0xC211", "0xC211"] in unhandled


def test_a_status_the_library_does_not_know_fails_the_build(tmp_path: Path) -> None:
    code, errors = build(tmp_path, "# T\n\n```{aiodimse-status-table}\n0x0999 made up\n```\n")
    assert code != 0
    assert "0x0999 is not one aiodimse knows" in errors


def test_archive_tables_are_the_codes_lists(tmp_path: Path) -> None:
    """The storage classes, transfer syntaxes, Q/R models and index keys of the
    conformance statement and docs/archive.md are the code's own, row for row."""
    page_text = "# T\n\n" + "".join(
        f"```{{{name}}}\n```\n\n" for name in (
            "aiodimse-storage-classes", "aiodimse-transfer-syntaxes",
            "aiodimse-qr-models", "aiodimse-archive-keys"))
    code, page = build(tmp_path, page_text)
    assert code == 0, page
    table = rows(page)
    n = len(STORAGE_CLASSES)
    assert table[0] == ["SOP class", "UID", "Retired"]
    assert [r[1] for r in table[1:1 + n]] == list(STORAGE_CLASSES)
    assert ["CT Image Storage", CT, ""] in table[1:1 + n]
    rest = table[1 + n:]
    m = len(ALL_TRANSFER_SYNTAXES)
    assert rest[0] == ["Transfer syntax", "UID"]
    assert [r[1] for r in rest[1:1 + m]] == list(ALL_TRANSFER_SYNTAXES)
    rest = rest[1 + m:]
    assert [r[1] for r in rest[1:1 + len(MODELS)]] == list(MODELS)
    assert ["Study Root Query/Retrieve Information Model - GET",
            "1.2.840.10008.5.1.4.1.2.2.3", "C-GET", "STUDY, SERIES, IMAGE"] in rest
    keys = rest[1 + len(MODELS):]
    assert keys[0][:2] == ["Level", "Keyword"]
    assert [r[1] for r in keys[1:]] == list(KEYS)
    by_name = {r[1]: r for r in keys[1:]}
    assert by_name["PatientID"][4] == "unique"
    assert by_name["StudyDate"][5] == "single value, range"
    assert by_name["NumberOfStudyRelatedInstances"][5] == "returned, not matched"
    assert by_name["ModalitiesInStudy"][5].endswith("matches if any of its values does")


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # "A*" as a CS, on purpose
def test_the_matching_column_follows_the_query_engine() -> None:
    """Each key's Matching text says what archive/query.py does with a value: a
    range is accepted exactly where the text names one, a wildcard likewise."""
    sys.path.insert(0, str(EXT))
    try:
        from aiodimse_tables import key_matching  # (docs/_ext: not a package)
    finally:
        sys.path.remove(str(EXT))
    model = STUDY_ROOT_FIND
    for key in KEYS.values():
        text = key_matching(key)
        level = model.level_of(key.level)
        if level not in model.levels or key.unique:
            continue
        ds = Dataset()
        ds.QueryRetrieveLevel = level
        for lvl, unique in ((lv, k) for lv in model.levels for k in KEYS.values()
                            if k.unique and k.level == lv):
            if model.levels.index(lvl) < model.levels.index(level):
                setattr(ds, unique.keyword, "1.2.3")
        # a range for dates and times, a wildcard for the rest (an integer takes none)
        sample = {"DA": "20240101-20240102", "TM": "10-11", "IS": "7"}.get(key.vr, "A*")
        ds.add_new(key.tag, key.vr, sample)
        try:
            parse_find(model, ds)
            accepted = True
        except QueryError:
            accepted = False
        if "returned, not matched" in text or key.vr == "IS":
            assert accepted and "wildcard" not in text, key.keyword
        elif key.vr in ("DA", "TM"):
            assert accepted == ("range" in text), key.keyword
        else:
            assert accepted == ("wildcard" in text), key.keyword

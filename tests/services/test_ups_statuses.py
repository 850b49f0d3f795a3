"""The UPS status table: docs/ups.md prints exactly the code's table, every status
constant is in it, and each code falls in the category PS3.4 CC gives it."""

from __future__ import annotations

import re
from pathlib import Path

from aiodimse.services.ups import statuses as st
from aiodimse.status import Category, code_to_category

DOC = Path(__file__).resolve().parents[2] / "docs" / "ups.md"


def test_the_docs_table_is_the_codes_table() -> None:
    text = DOC.read_text()
    section = text[text.index("## Statuses"):text.index("## The subscription side")]
    rows = re.findall(r"^\| 0x([0-9A-F]{4}) \| (.*?) \| (.*?) \|$", section, re.M)
    assert [(int(c, 16), ops, meaning) for c, ops, meaning in rows] == list(st.TABLE)


def test_every_status_constant_is_in_the_table() -> None:
    constants = {v for k, v in vars(st).items() if k.isupper() and isinstance(v, int)}
    assert constants == {code for code, _, _ in st.TABLE}


def test_categories() -> None:
    for code in (st.CREATED_WITH_MODIFICATIONS, st.ALREADY_CANCELED, st.ALREADY_COMPLETED):
        assert code_to_category(code) is Category.WARNING, hex(code)
    for code in (st.MAY_NO_LONGER_BE_UPDATED, st.WRONG_TRANSACTION_UID, st.NO_SUCH_WORKITEM,
                 st.STATE_NOT_SCHEDULED, st.FINAL_STATE_NOT_MET, st.CANCEL_ALREADY_COMPLETED):
        assert code_to_category(code) is Category.FAILURE, hex(code)

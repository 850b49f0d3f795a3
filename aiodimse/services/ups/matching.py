"""UPS C-FIND matching (PS3.4 CC.2.8, C.2.2.2) over workitem data sets.

The store narrows first (``prefilter``: the indexed columns, exact values and the
start date/time range); ``matches`` then judges every key of the identifier on the
workitem itself, so what the store cannot index still matches right:

- empty value: universal (the key is only returned);
- UI: any of a list of UIDs; DA, TM, DT: a single value or a range ``a-b``, ``-b``,
  ``a-``, compared over as many leading characters as the bound has (values
  normalised as the archive's index keeps them: ``store.records.normalise``);
- text: single value, or wildcard ``*``/``?``; person names ignore ASCII case;
- a sequence: an item of the identifier with keys matches when one item of the
  workitem's sequence matches all of them (Scheduled Workitem Code Sequence etc.);
- several values in the workitem: any of them may match.

The Transaction UID is never matched nor returned: it is the claimer's lock
("Cannot be queried", Table CC.2.5-3); nor are private attributes, whose meaning
this SCP does not know. Both are keys it does not support: ``unsupported`` says
whether an identifier holds one, and the matches are then answered 0xFF01
(PS3.4 Table CC.2.8-2: "one or more Optional Keys were not supported").
"""

from __future__ import annotations

import re
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from ...store.interface import WorkitemQuery
from ...store.records import normalise
from .workitems import TRANSACTION_UID_TAG

__all__ = ["matches", "answer", "prefilter", "indexed", "MatchError", "unsupported"]

_CHARSET = 0x00080005
_RANGED = frozenset({"DA", "TM", "DT"})
_NO_WILDCARD = frozenset({"UI", "DA", "TM", "DT", "IS", "DS", "SQ", "AT", "US", "UL",
                          "SS", "SL", "FL", "FD"})


class MatchError(ValueError):
    """An identifier no workitem can be matched against (answered 0xA900)."""


def _texts(elem: DataElement) -> list[str]:
    value: Any = elem.value
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == \
        "MultiValue" else [value]
    out = [str(v).strip(" \x00") for v in items]
    return [v for v in out if v]


def _norm(vr: str, value: str) -> str:
    if vr == "DT":
        value = value.strip(" \x00")
        for sign in "+-":  # a UTC offset is not compared
            head, found, _ = value[8:].rpartition(sign)
            if found:
                value = value[:8] + head
        return value
    return normalise(vr, value)


def _pattern(text: str, fold: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def _range(vr: str, text: str) -> tuple[str, str] | None:
    if vr not in _RANGED or "-" not in text:
        return None
    if vr == "DT":  # a DT may carry a -HHMM offset: a range has its '-' at 8+ or start
        idx = text.find("-", 0)
        while idx not in (-1, 0) and idx < 8:
            idx = text.find("-", idx + 1)
        if idx == -1:
            return None
        low, high = text[:idx], text[idx + 1:]
    else:
        low, _, high = text.partition("-")
    return _norm(vr, low) if low else "", _norm(vr, high) if high else ""


def _value_matches(vr: str, query: str, values: list[str]) -> bool:
    bounds = _range(vr, query)
    if bounds is not None:
        low, high = bounds
        return any((not low or _norm(vr, v)[:len(low)] >= low) and
                   (not high or _norm(vr, v)[:len(high)] <= high) for v in values)
    if vr == "UI":
        wanted = {q.strip(" \x00") for q in query.split("\\")}
        return any(v in wanted for v in values)
    if vr not in _NO_WILDCARD and ("*" in query or "?" in query):
        pattern = _pattern(query, vr == "PN")
        return any(pattern.fullmatch(v) for v in values)
    if vr == "PN":
        return any(_norm(vr, v).lower() == _norm(vr, query).lower() for v in values)
    return any(_norm(vr, v) == _norm(vr, query) for v in values)


def _skipped(tag: BaseTag) -> bool:
    """Keys neither matched nor returned (the command group's too)."""
    return bool(tag == TRANSACTION_UID_TAG or tag.group == 0 or tag.is_private)


def unsupported(identifier: Dataset) -> bool:
    """Whether ``identifier`` (or an item of a sequence key) holds a key this SCP
    neither matches nor returns (answered 0xFF01)."""
    for elem in identifier:
        if elem.tag == TRANSACTION_UID_TAG or elem.tag.is_private:
            return True
        if elem.VR == "SQ" and any(unsupported(item) for item in elem.value or ()):
            return True
    return False


def _item_matches(query: Dataset, item: Dataset) -> bool:
    for elem in query:
        if elem.tag == _CHARSET or _skipped(elem.tag):
            continue
        if not _element_matches(elem, item):
            return False
    return True


def _element_matches(elem: DataElement, workitem: Dataset) -> bool:
    if elem.VR == "SQ":
        queries = [q for q in (elem.value or []) if len(q)]
        if not queries:
            return True
        have = workitem.get(elem.tag)
        items = list(have.value or []) if have is not None and have.VR == "SQ" else []
        return all(any(_item_matches(q, i) for i in items) for q in queries)
    wanted = _texts(elem)
    if not wanted or wanted == ["*"]:
        return True
    if len(wanted) > 1 and elem.VR != "UI":
        raise MatchError(f"({elem.tag.group:04X},{elem.tag.elem:04X}) has several values")
    have = workitem.get(elem.tag)
    values = _texts(have) if have is not None else []
    if not values:
        return False
    return _value_matches(elem.VR, "\\".join(wanted), values)


def matches(identifier: Dataset, workitem: Dataset) -> bool:
    """Whether ``workitem`` matches every key of ``identifier``."""
    return _item_matches(identifier, workitem)


def answer(identifier: Dataset, workitem: Dataset) -> Dataset:
    """The identifier's keys with the workitem's values (zero-length where it has
    none); a sequence key with keys in its item comes back with just those."""
    out = Dataset()
    for elem in identifier:
        tag = elem.tag
        if _skipped(tag):
            continue
        if tag == _CHARSET:
            if _CHARSET in workitem:
                out[tag] = workitem[tag]
            continue
        have: DataElement | None = workitem.get(tag)
        if elem.VR == "SQ":
            asked = [q for q in (elem.value or []) if len(q)]
            items = list(have.value or []) if have is not None and have.VR == "SQ" else []
            if asked and items:
                out[tag] = DataElement(tag, "SQ", Sequence(
                    [answer(asked[0], item) for item in items]))
            else:
                out[tag] = DataElement(tag, "SQ", Sequence(items))
        elif have is not None:
            out[tag] = have
        else:
            out[tag] = DataElement(tag, elem.VR, None)
    return out


def _single(identifier: Dataset, keyword: str) -> str | None:
    if keyword not in identifier:
        return None
    texts = _texts(identifier[keyword])
    if len(texts) != 1 or "*" in texts[0] or "?" in texts[0]:
        return None
    return texts[0]


def prefilter(identifier: Dataset | None) -> WorkitemQuery:
    """What the store can narrow ``identifier`` to (never more than it matches)."""
    if identifier is None:
        return WorkitemQuery()
    uids: tuple[str, ...] = ()
    if "SOPInstanceUID" in identifier:
        uids = tuple(_texts(identifier["SOPInstanceUID"]))
    state = _single(identifier, "ProcedureStepState")
    start_from = start_to = None
    start = _single(identifier, "ScheduledProcedureStepStartDateTime")
    if start is not None:
        bounds = _range("DT", start)
        if bounds is None:
            start_from = start_to = _norm("DT", start)
        else:
            start_from, start_to = bounds[0] or None, bounds[1] or None
    return WorkitemQuery(
        uids=uids,
        states=(state.upper(),) if state else (),
        patient_id=_single(identifier, "PatientID"),
        worklist_label=_single(identifier, "WorklistLabel"),
        start_from=start_from, start_to=start_to,
    )


def indexed(ds: Dataset) -> dict[str, str]:
    """The store's columns for a workitem, normalised as ``prefilter`` asks for them."""
    def one(keyword: str, vr: str) -> str:
        texts = _texts(ds[keyword]) if keyword in ds else []
        return _norm(vr, texts[0]) if texts else ""

    return {"patient_id": one("PatientID", "LO"),
            "scheduled_start": one("ScheduledProcedureStepStartDateTime", "DT"),
            "worklist_label": one("WorklistLabel", "LO")}

"""From a request's identifier to the index's query: PS3.4 C.4.1/C.4.2 checks and
C.2.2.2 matching, with nothing matched yet.

Each key of the identifier with a value becomes a ``Condition`` (``records``):

- empty, or a value of ``*`` alone: universal matching (no condition, the key
  is returned);
- UI: list of UID matching (``a\\b\\c``), each one a UID;
- DA and TM: single value, or a range ``a-b``, ``-b``, ``a-`` (a time's upper
  bound stands for its whole precision: ``-10`` is up to 10:59:59.999999);
- IS: single value (as an integer: ``007`` is ``7``);
- text (PN, LO, SH, CS): single value, or wildcard with ``*`` and ``?``; person
  names (PN) ignore ASCII case, as most archives do; the rest are case-sensitive;
- several values (``CT\\MR``): any of them (for ModalitiesInStudy, a study with a
  series of any of them).

Keys outside ``records.KEYS`` (and the counts, which are only returned) match
everything and come back zero-length; a sequence key is never matched and comes
back empty. Only the index's keys are judged for their level.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from ..dimse.commands import is_valid_uid
from ..store.records import KEYS, Condition, IndexQuery, Key, Term, normalise
from .models import FIND, IdentifierMismatch, QueryModel, UnableToProcess

__all__ = ["FindRequest", "parse_find", "parse_retrieve", "QUERY_RETRIEVE_LEVEL",
           "SPECIFIC_CHARACTER_SET"]

QUERY_RETRIEVE_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005
_KEY_BY_TAG = {k.tag: k for k in KEYS.values()}
_ASCII_VRS = frozenset({"AE", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})
_DATE = re.compile(r"[0-9]{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])")
_TIME = re.compile(r"(?:[01][0-9]|2[0-3])(?:[0-5][0-9](?:(?:[0-5][0-9]|60)(?:\.[0-9]{1,6})?)?)?")


@dataclass(frozen=True, slots=True)
class FindRequest:
    """A checked C-FIND identifier: the index query, and which of the request's
    elements to answer with (their tag, VR and, for an index key, its keyword)."""

    query: IndexQuery
    answer: tuple[tuple[BaseTag, str, str | None], ...]
    charset: str | None  # the request's Specific Character Set, if it had one


def _values(ds: Dataset, tag: int, vr: str) -> list[str]:
    """The element's values as text, empty ones dropped ([]: universal)."""
    try:
        raw: object = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and vr in _ASCII_VRS:
            data = raw.value or b""
            text = bytes(data).decode("ascii").strip(" \x00")
            items = text.split("\\") if text else []
        else:
            value: Any = ds[tag].value
            if value is None or value == "":
                items = []
            elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
                items = [str(v) for v in value]
            else:
                items = [str(value)]
    except Exception as exc:  # a value pydicom cannot decode
        raise UnableToProcess(f"cannot read ({tag >> 16:04X},{tag & 0xFFFF:04X}): "
                              f"{type(exc).__name__}") from exc
    items = [v.strip(" \x00") for v in items]
    return [v for v in items if v]


def _bad(key: Key, value: str) -> UnableToProcess:
    return UnableToProcess(f"{key.keyword} {value[:24]!r} is not a valid {key.vr} key")


def _range_term(key: Key, value: str) -> Term:
    lo, dash, hi = value.partition("-")
    if not dash:
        return Term("exact", _checked(key, lo))
    if "-" in hi or not (lo or hi):
        raise _bad(key, value)
    low = _checked(key, lo) if lo else ""
    high = _checked(key, hi) if hi else ""
    if key.vr == "TM" and hi:  # the upper bound covers its precision
        whole, _dot, frac = hi.replace(":", "").partition(".")
        high = whole.ljust(6, "9") + "." + frac.ljust(6, "9")
    return Term("range", low, high)


def _checked(key: Key, value: str) -> str:
    norm = normalise(key.vr, value)
    pattern = _DATE if key.vr == "DA" else _TIME
    if pattern.fullmatch(norm if key.vr == "DA" else value.replace(":", "")) is None:
        raise _bad(key, value)
    return norm


def _term(key: Key, value: str) -> Term:
    if key.vr == "UI":
        if not is_valid_uid(value):
            raise _bad(key, value)
        return Term("exact", value)
    if key.vr in ("DA", "TM"):
        return _range_term(key, value)
    if key.vr == "IS":
        norm = normalise("IS", value)
        if not norm.lstrip("-").isdigit():
            raise _bad(key, value)
        return Term("exact", norm)
    if "*" in value or "?" in value:
        return Term("pattern", value)
    return Term("exact", normalise(key.vr, value))


def _condition(key: Key, values: list[str]) -> Condition | None:
    """The condition of a key's values, None for universal matching."""
    if not values or values == ["*"]:
        return None
    if key.computed and not key.multi:  # the counts: returned, not matched
        return None
    return Condition(key.keyword, tuple(_term(key, v) for v in values), key.vr == "PN")


def _level(model: QueryModel, ds: Dataset) -> str:
    values = _values(ds, QUERY_RETRIEVE_LEVEL, "CS") if QUERY_RETRIEVE_LEVEL in ds else []
    if len(values) != 1:
        raise IdentifierMismatch("no Query/Retrieve Level" if not values
                                 else "more than one Query/Retrieve Level")
    if values[0] not in model.levels:
        raise IdentifierMismatch(f"Query/Retrieve Level {values[0][:16]!r} is not one "
                                 f"of {model.name}")
    return values[0]


def _unique_keys(model: QueryModel, upto: str) -> Iterator[tuple[str, Key]]:
    """(level, unique key) for each level of ``model`` from the top to ``upto``."""
    for level in model.levels:
        for key in KEYS.values():
            if key.unique and key.level == level:
                yield level, key
        if level == upto:
            return


def _single_unique(ds: Dataset, key: Key) -> Condition:
    """A unique key above the level: present, one value, no wildcard, a UID if UI."""
    values = _values(ds, key.tag, key.vr) if key.tag in ds else []
    if len(values) != 1 or "*" in values[0] or "?" in values[0]:
        raise IdentifierMismatch(f"{key.keyword} must be one value above the level")
    if key.vr == "UI" and not is_valid_uid(values[0]):
        raise IdentifierMismatch(f"{key.keyword} {values[0][:24]!r} is not a UID")
    return Condition(key.keyword, (Term("exact", normalise(key.vr, values[0])),))


def parse_find(model: QueryModel, ds: Dataset) -> FindRequest:
    """Check a C-FIND identifier against ``model`` and build its query.

    Raises ``IdentifierMismatch`` or ``UnableToProcess`` (``models``).
    """
    level = _level(model, ds)
    rank = model.levels.index(level)
    conditions: list[Condition] = []
    answer: list[tuple[BaseTag, str, str | None]] = []
    keys: list[str] = []
    above: set[str] = set()
    for lvl, key in _unique_keys(model, level):
        if lvl != level:
            conditions.append(_single_unique(ds, key))
            above.add(key.keyword)
    for elem in ds:
        tag = elem.tag
        if tag in (QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET):
            continue
        found = _KEY_BY_TAG.get(tag)
        if found is None:
            answer.append((tag, elem.VR, None))
            continue
        key = found
        if model.levels.index(model.level_of(key.level)) > rank:
            raise IdentifierMismatch(f"{key.keyword} is below the {level} level")
        answer.append((tag, key.vr, key.keyword))
        keys.append(key.keyword)
        if key.keyword not in above:
            cond = _condition(key, _values(ds, tag, key.vr))
            if cond is not None:
                conditions.append(cond)
    unique = next(k for lvl, k in _unique_keys(model, level) if lvl == level)
    if unique.keyword not in keys:  # the level's unique key is always answered
        answer.append((BaseTag(unique.tag), unique.vr, unique.keyword))
        keys.append(unique.keyword)
    charset = None
    if SPECIFIC_CHARACTER_SET in ds:
        charset = "\\".join(_values(ds, SPECIFIC_CHARACTER_SET, "CS")) or None
    return FindRequest(IndexQuery(level, tuple(conditions), tuple(keys)),
                       tuple(answer), charset)


def parse_retrieve(model: QueryModel, ds: Dataset) -> IndexQuery:
    """Check a C-GET/C-MOVE identifier (the unique keys from the top down to the
    level; a UID list allowed at the level itself) and build its query; other keys
    are not matched. Raises ``IdentifierMismatch`` or ``UnableToProcess``."""
    if model.operation == FIND:
        raise ValueError(f"{model.name} is not a retrieve model")
    level = _level(model, ds)
    conditions: list[Condition] = []
    for lvl, key in _unique_keys(model, level):
        if lvl != level:
            conditions.append(_single_unique(ds, key))
            continue
        values = _values(ds, key.tag, key.vr) if key.tag in ds else []
        if not values or any("*" in v or "?" in v for v in values):
            raise IdentifierMismatch(f"{key.keyword} must name what to retrieve")
        if key.vr != "UI" and len(values) != 1:
            raise IdentifierMismatch(f"{key.keyword} must be one value")
        terms = []
        for v in values:
            if key.vr == "UI" and not is_valid_uid(v):
                raise UnableToProcess(f"{key.keyword} {v[:24]!r} is not a UID")
            terms.append(Term("exact", normalise(key.vr, v)))
        conditions.append(Condition(key.keyword, tuple(terms)))
    return IndexQuery(level, tuple(conditions), ())

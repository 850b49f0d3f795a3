"""The archive index's queries as SQL text, for any backend: an ``IndexQuery`` in,
a statement and its parameters out.

Both backends keep the same tables (``patients`` <- ``studies`` <- ``series`` <-
``instances``, each with an integer ``id``) and the same normalised text, so what
a query selects, joins and how it pages is written once here. What differs is the
dialect: the parameter marks (``?`` or ``$n``), how a case-folded comparison and
a wildcard pattern are spelled, and the text aggregate of the multi-valued keys;
a backend hands in its ``Dialect``. Values are always bound, never spliced in.

Matches are read by keyset: each batch asks for the next ``limit`` rows after the
last id seen, so no statement stays open between batches (no read snapshot held
while a slow peer takes its responses) and memory is one batch.

Matching (the engine hands over normalised text): ``exact`` is ``=``, ``pattern``
is the dialect's wildcard match (DICOM's ``*`` and ``?``), ``range`` is ``<>''
AND >= AND <=`` on text (dates and times are normalised so that byte order is
time order: a backend compares bytewise). ``fold`` (person names) ignores ASCII
case, and only ASCII case.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from .records import IMAGE, PATIENT, SERIES, STUDY, Condition, IndexQuery, Term

__all__ = ["Dialect", "Statement", "match_sql", "retrieve_sql", "count_retrieve_sql",
           "match_row", "batches", "FIRST_BATCH", "MAX_BATCH", "like_pattern", "ascii_lower",
           "RETRIEVE_COLUMNS"]

T = TypeVar("T")

# Matches are read in batches from FIRST_BATCH rows (the first answer goes out
# soon) growing fourfold to MAX_BATCH (few round trips to the database).
FIRST_BATCH = 16
MAX_BATCH = 1024

# keyword -> column expression over the aliases p, s, r, i
_COLUMNS: dict[str, str] = {
    "PatientName": "p.patient_name", "PatientID": "p.patient_id",
    "PatientBirthDate": "p.birth_date", "PatientSex": "p.sex",
    "StudyDate": "s.study_date", "StudyTime": "s.study_time",
    "AccessionNumber": "s.accession", "StudyID": "s.study_id",
    "StudyInstanceUID": "s.study_uid", "ReferringPhysicianName": "s.referring",
    "StudyDescription": "s.description",
    "Modality": "r.modality", "SeriesNumber": "r.series_number",
    "SeriesInstanceUID": "r.series_uid", "SeriesDescription": "r.description",
    "InstanceNumber": "i.instance_number", "SOPInstanceUID": "i.sop_instance_uid",
    "SOPClassUID": "i.sop_class_uid", "AvailableTransferSyntaxUID": "i.transfer_syntax",
}

# count(*) of the rows below: nested per level (each level's rows found by its
# parent's id through that column's index), not joined: a join of the levels,
# planned without statistics (a table just filled, not analysed yet), scans the
# whole of the lower table once per row matched
def _sum(inner: str, table: str, column: str, parent: str) -> str:
    return f"(SELECT coalesce(sum({inner}), 0) FROM {table} WHERE {column} = {parent})"


_IN_SERIES = "(SELECT count(*) FROM instances x WHERE x.series = y.id)"
_COUNTS: dict[str, str] = {
    "NumberOfPatientRelatedStudies": "(SELECT count(*) FROM studies x WHERE x.patient = p.id)",
    "NumberOfPatientRelatedSeries": _sum("(SELECT count(*) FROM series y WHERE y.study = z.id)",
                                         "studies z", "z.patient", "p.id"),
    "NumberOfPatientRelatedInstances": _sum(_sum(_IN_SERIES, "series y", "y.study", "z.id"),
                                            "studies z", "z.patient", "p.id"),
    "NumberOfStudyRelatedSeries": "(SELECT count(*) FROM series x WHERE x.study = s.id)",
    "NumberOfStudyRelatedInstances": _sum(_IN_SERIES, "series y", "y.study", "s.id"),
    "NumberOfSeriesRelatedInstances": "(SELECT count(*) FROM instances x WHERE x.series = r.id)",
}
# multi-valued computed keys: (rows, value), None for a study's instances (the
# dialect's ``study_instances``); shown as the distinct non-empty values joined by
# backslashes in byte order; a condition on them holds if any value matches
_ANY_OF: dict[str, tuple[str | None, str]] = {
    "ModalitiesInStudy": ("series x WHERE x.study = s.id", "x.modality"),
    "SOPClassesInStudy": (None, "x.sop_class_uid"),
}

_IMAGES = ("instances i JOIN series r ON r.id = i.series JOIN studies s ON s.id = r.study "
           "JOIN patients p ON p.id = s.patient")
_FROM = {
    PATIENT: ("patients p", "p.id"),
    STUDY: ("studies s JOIN patients p ON p.id = s.patient", "s.id"),
    SERIES: ("series r JOIN studies s ON s.id = r.study JOIN patients p ON p.id = s.patient",
             "r.id"),
}

RETRIEVE_COLUMNS = "i.sop_class_uid, i.sop_instance_uid, i.path, i.transfer_syntax"
"""What ``retrieve_sql`` selects after the instance's id: a ``RetrieveItem``'s fields."""


def ascii_lower(text: str) -> str:
    """``text`` with A-Z lowered and nothing else (what ``fold`` ignores)."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def like_pattern(pattern: str) -> str:
    """DICOM's ``*``/``?`` pattern as LIKE's with ``ESCAPE '\\'``."""
    out = []
    for ch in pattern:
        if ch in "%_\\":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


class Dialect:
    """How one backend spells what differs. Subclasses override the methods; each
    that takes ``params`` appends its parameters to it and returns the SQL.
    ``instance_id``: the integer key of ``instances`` (SQLite's is its rowid)."""

    instance_id = "id"
    study_instances = "instances x JOIN series y ON x.series = y.id WHERE y.study = s.id"
    """A study's instances (``x``), as FROM ... WHERE (callers append AND ...)."""

    def mark(self, params: list[Any], value: Any) -> str:
        """Bind ``value``: append it and return its placeholder."""
        raise NotImplementedError

    def fold_equal(self, expr: str, value: str, params: list[Any]) -> str:
        """``expr`` equals ``value`` ignoring ASCII case."""
        raise NotImplementedError

    def pattern(self, expr: str, pattern: str, fold: bool, params: list[Any]) -> str:
        """``expr`` matches DICOM's wildcard ``pattern`` (ignoring ASCII case if ``fold``)."""
        raise NotImplementedError

    def joined(self, source: str, expr: str) -> str:
        """The distinct non-empty values of ``expr`` over ``source``, in byte order,
        joined by backslashes (NULL when none)."""
        raise NotImplementedError

    # -- shared

    def _term(self, expr: str, term: Term, fold: bool, params: list[Any]) -> str:
        if term.kind == "exact":
            if fold:
                return self.fold_equal(expr, term.a, params)
            return f"{expr} = {self.mark(params, term.a)}"
        if term.kind == "pattern":
            return self.pattern(expr, term.a, fold, params)
        parts = [f"{expr} <> ''"]
        if term.a:
            parts.append(f"{expr} >= {self.mark(params, term.a)}")
        if term.b:
            parts.append(f"{expr} <= {self.mark(params, term.b)}")
        return "(" + " AND ".join(parts) + ")"

    def condition(self, cond: Condition, params: list[Any]) -> str:
        if cond.keyword in _ANY_OF:
            source, expr = self._any_of(cond.keyword)
            inner = " OR ".join(self._term(expr, t, cond.fold, params) for t in cond.terms)
            return f"EXISTS (SELECT 1 FROM {source} AND ({inner}))"
        expr = _COLUMNS[cond.keyword]
        return "(" + " OR ".join(self._term(expr, t, cond.fold, params)
                                 for t in cond.terms) + ")"

    def where(self, conditions: Iterable[Condition], key: str, after: int,
              params: list[Any]) -> str:
        clauses = [self.condition(c, params) for c in conditions]
        clauses.append(f"{key} > {self.mark(params, after)}")
        return " AND ".join(clauses)

    def source(self, level: str) -> tuple[str, str]:
        """The tables a level's matches are read from, and the key they page by."""
        if level == IMAGE:
            return _IMAGES, f"i.{self.instance_id}"
        return _FROM[level]

    def column(self, keyword: str) -> str:
        """The expression a key's value is read with."""
        if keyword in _COLUMNS:
            return _COLUMNS[keyword]
        if keyword in _ANY_OF:
            return self.joined(*self._any_of(keyword))
        return _COUNTS[keyword]

    def _any_of(self, keyword: str) -> tuple[str, str]:
        source, expr = _ANY_OF[keyword]
        return source or self.study_instances, expr


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL text with its parameters, in order."""

    sql: str
    params: list[Any]


def match_sql(dialect: Dialect, query: IndexQuery, after: int, limit: int) -> Statement:
    """The next ``limit`` matches after id ``after``: the id, then ``query.keys``."""
    table, key = dialect.source(query.level)
    select = [key] + [dialect.column(k) for k in query.keys]
    params: list[Any] = []
    where = dialect.where(query.conditions, key, after, params)
    sql = (f"SELECT {', '.join(select)} FROM {table} WHERE {where} "
           f"ORDER BY {key} LIMIT {dialect.mark(params, limit)}")
    return Statement(sql, params)


def retrieve_sql(dialect: Dialect, query: IndexQuery, after: int, limit: int) -> Statement:
    """The next ``limit`` instances (with a file) under ``query``'s matches
    (``RETRIEVE_COLUMNS``)."""
    params: list[Any] = []
    table, key = dialect.source(IMAGE)
    where = dialect.where(query.conditions, key, after, params)
    sql = (f"SELECT {key}, {RETRIEVE_COLUMNS} FROM {table} WHERE i.path IS NOT NULL "
           f"AND {where} ORDER BY {key} LIMIT {dialect.mark(params, limit)}")
    return Statement(sql, params)


def count_retrieve_sql(dialect: Dialect, query: IndexQuery) -> Statement:
    """How many instances ``retrieve_sql`` gives in all."""
    params: list[Any] = []
    table, key = dialect.source(IMAGE)
    where = dialect.where(query.conditions, key, -1, params)
    return Statement(f"SELECT count(*) FROM {table} WHERE i.path IS NOT NULL AND {where}",
                     params)


def match_row(keys: tuple[str, ...], values: Iterable[Any]) -> dict[str, str]:
    """A match's values as text (NULL: "")."""
    return {k: "" if v is None else str(v) for k, v in zip(keys, values, strict=True)}


async def batches(read: Callable[[int, int], Awaitable[tuple[list[T], int]]]
                  ) -> AsyncIterator[T]:
    """``read(after, limit)``'s rows batch after batch (it returns them and the last
    id read), from FIRST_BATCH growing to MAX_BATCH, until a batch comes back short."""
    after, size = -1, FIRST_BATCH
    while True:
        rows, after = await read(after, size)
        for row in rows:
            yield row
        if len(rows) < size:
            return
        size = min(size * 4, MAX_BATCH)

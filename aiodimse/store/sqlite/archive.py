"""The archive index in SQL: records in, matches out, a bounded batch at a time.

A query becomes one SELECT over the level's table joined to the levels above
(``patients`` <- ``studies`` <- ``series`` <- ``instances``), its conditions bound
as parameters, never spliced in. Matches are read by keyset: each batch asks for
the next ``limit`` rows after the last id seen, so no statement stays open between
batches (no read snapshot held while a slow peer takes its responses, writes go on)
and memory is one batch whatever the result's size.

Matching (the engine hands over normalised text): ``exact`` is ``=``, ``pattern``
is GLOB (case-sensitive; DICOM's ``*``/``?`` are GLOB's, a literal ``[`` is
bracketed), ``range`` is ``<>'' AND >= AND <=`` on text (dates and times are
normalised so text order is time order). ``fold`` (person names) compares
ignoring ASCII case: ``= COLLATE NOCASE`` and LIKE (``%``/``_``, with ``\\``
escaping literal ``%``, ``_`` and ``\\``), SQLite's LIKE folding ASCII only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from ..records import (
    IMAGE,
    PATIENT,
    SERIES,
    STUDY,
    Condition,
    IndexQuery,
    InstanceRecord,
    RetrieveItem,
    Term,
)

__all__ = ["add_records", "match_batch", "retrieve_batch", "count_retrieve",
           "archived_path", "remove_instance", "glob_pattern", "like_pattern"]

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

_STUDY_INSTANCES = "instances x JOIN series y ON x.series = y.id WHERE y.study = s.id"
# computed keys: a scalar subquery, asked for only when the query wants the key
_COMPUTED: dict[str, str] = {
    "NumberOfPatientRelatedStudies": "(SELECT count(*) FROM studies x WHERE x.patient = p.id)",
    "NumberOfPatientRelatedSeries": "(SELECT count(*) FROM series x JOIN studies y "
                                    "ON x.study = y.id WHERE y.patient = p.id)",
    "NumberOfPatientRelatedInstances": "(SELECT count(*) FROM instances x JOIN series y "
                                       "ON x.series = y.id JOIN studies z ON y.study = z.id "
                                       "WHERE z.patient = p.id)",
    "NumberOfStudyRelatedSeries": "(SELECT count(*) FROM series x WHERE x.study = s.id)",
    "NumberOfStudyRelatedInstances": f"(SELECT count(*) FROM {_STUDY_INSTANCES})",
    "NumberOfSeriesRelatedInstances": "(SELECT count(*) FROM instances x WHERE x.series = r.id)",
    "ModalitiesInStudy": "(SELECT group_concat(v, '\\') FROM (SELECT DISTINCT x.modality AS v "
                         "FROM series x WHERE x.study = s.id AND x.modality <> '' ORDER BY v))",
    "SOPClassesInStudy": "(SELECT group_concat(v, '\\') FROM (SELECT DISTINCT x.sop_class_uid "
                         f"AS v FROM {_STUDY_INSTANCES} ORDER BY v))",
}
# multi-valued computed keys a condition may test: any value matching is a match
_ANY_OF: dict[str, tuple[str, str]] = {
    "ModalitiesInStudy": ("series x WHERE x.study = s.id", "x.modality"),
    "SOPClassesInStudy": (_STUDY_INSTANCES, "x.sop_class_uid"),
}

_FROM = {
    PATIENT: ("patients p", "p.id"),
    STUDY: ("studies s JOIN patients p ON p.id = s.patient", "s.id"),
    SERIES: ("series r JOIN studies s ON s.id = r.study JOIN patients p ON p.id = s.patient",
             "r.id"),
    IMAGE: ("instances i JOIN series r ON r.id = i.series JOIN studies s ON s.id = r.study "
            "JOIN patients p ON p.id = s.patient", "i.rowid"),
}
_RETRIEVE_FROM = _FROM[IMAGE][0]


def glob_pattern(pattern: str) -> str:
    """DICOM's ``*``/``?`` pattern as GLOB's: ``[`` (GLOB's only other special
    character outside brackets) is taken literally."""
    return pattern.replace("[", "[[]")


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


def _term(expr: str, term: Term, fold: bool, params: list[Any]) -> str:
    if term.kind == "exact":
        params.append(term.a)
        return f"{expr} = ? COLLATE NOCASE" if fold else f"{expr} = ?"
    if term.kind == "pattern":
        if fold:
            params.append(like_pattern(term.a))
            return f"{expr} LIKE ? ESCAPE '\\'"
        params.append(glob_pattern(term.a))
        return f"{expr} GLOB ?"
    parts = [f"{expr} <> ''"]
    if term.a:
        parts.append(f"{expr} >= ?")
        params.append(term.a)
    if term.b:
        parts.append(f"{expr} <= ?")
        params.append(term.b)
    return "(" + " AND ".join(parts) + ")"


def _condition(cond: Condition, params: list[Any]) -> str:
    if cond.keyword in _ANY_OF:
        source, expr = _ANY_OF[cond.keyword]
        inner = " OR ".join(_term(expr, t, cond.fold, params) for t in cond.terms)
        return f"EXISTS (SELECT 1 FROM {source} AND ({inner}))"
    expr = _COLUMNS[cond.keyword]
    return "(" + " OR ".join(_term(expr, t, cond.fold, params) for t in cond.terms) + ")"


def _where(conditions: Iterable[Condition], key: str, after: int,
           params: list[Any]) -> str:
    clauses = [_condition(c, params) for c in conditions]
    clauses.append(f"{key} > ?")
    params.append(after)
    return " AND ".join(clauses)


def match_batch(conn: sqlite3.Connection, query: IndexQuery, after: int, limit: int
                ) -> tuple[list[dict[str, str]], int]:
    """The next ``limit`` matches after id ``after``, and the last id read."""
    table, key = _FROM[query.level]
    select = [key] + [_COLUMNS.get(k) or _COMPUTED[k] for k in query.keys]
    params: list[Any] = []
    sql = (f"SELECT {', '.join(select)} FROM {table} "
           f"WHERE {_where(query.conditions, key, after, params)} ORDER BY {key} LIMIT ?")
    params.append(limit)
    rows: list[dict[str, str]] = []
    last = after
    for row in conn.execute(sql, params):
        last = int(row[0])
        values = zip(query.keys, row[1:], strict=True)
        rows.append({k: "" if v is None else str(v) for k, v in values})
    return rows, last


def retrieve_batch(conn: sqlite3.Connection, query: IndexQuery, after: int, limit: int
                   ) -> tuple[list[RetrieveItem], int]:
    """The next ``limit`` instances under ``query``'s matches, and the last id read."""
    params: list[Any] = []
    sql = (f"SELECT i.rowid, i.sop_class_uid, i.sop_instance_uid, i.path, i.transfer_syntax "
           f"FROM {_RETRIEVE_FROM} WHERE i.path IS NOT NULL AND "
           f"{_where(query.conditions, 'i.rowid', after, params)} ORDER BY i.rowid LIMIT ?")
    params.append(limit)
    items: list[RetrieveItem] = []
    last = after
    for row in conn.execute(sql, params):
        last = int(row[0])
        items.append(RetrieveItem(row[1], row[2], row[3], row[4]))
    return items, last


def count_retrieve(conn: sqlite3.Connection, query: IndexQuery) -> int:
    params: list[Any] = []
    sql = (f"SELECT count(*) FROM {_RETRIEVE_FROM} WHERE i.path IS NOT NULL AND "
           f"{_where(query.conditions, 'i.rowid', -1, params)}")
    return int(conn.execute(sql, params).fetchone()[0])


def archived_path(conn: sqlite3.Connection, sop_instance_uid: str) -> str | None:
    row = conn.execute("SELECT path FROM instances WHERE sop_instance_uid = ?",
                       (sop_instance_uid,)).fetchone()
    return None if row is None else row[0]


# -- writing ---------------------------------------------------------------------------

def _upsert(conn: sqlite3.Connection, table: str, key_column: str, key: str,
            values: dict[str, Any]) -> int:
    """Insert or update the row keyed ``key`` (the latest instance's values win);
    its id."""
    columns = [key_column, *values]
    marks = ", ".join("?" * len(columns))
    updates = ", ".join(f"{c} = excluded.{c}" for c in values)
    conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
                 f"ON CONFLICT ({key_column}) DO UPDATE SET {updates}",
                 [key, *values.values()])
    return int(conn.execute(f"SELECT id FROM {table} WHERE {key_column} = ?",
                            (key,)).fetchone()[0])


def _parent(conn: sqlite3.Connection, table: str, column: str, key_column: str,
            key: str) -> int | None:
    row = conn.execute(f"SELECT {column} FROM {table} WHERE {key_column} = ?",
                       (key,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _prune(conn: sqlite3.Connection, series: set[int], studies: set[int],
           patients: set[int]) -> None:
    """Drop those of the given series, studies and patients left without children."""
    for sid in series:
        row = conn.execute("SELECT study FROM series WHERE id = ? AND NOT EXISTS "
                           "(SELECT 1 FROM instances WHERE series = ?)", (sid, sid)).fetchone()
        if row is not None:
            conn.execute("DELETE FROM series WHERE id = ?", (sid,))
            studies.add(int(row[0]))
    for sid in studies:
        row = conn.execute("SELECT patient FROM studies WHERE id = ? AND NOT EXISTS "
                           "(SELECT 1 FROM series WHERE study = ?)", (sid, sid)).fetchone()
        if row is not None:
            conn.execute("DELETE FROM studies WHERE id = ?", (sid,))
            patients.add(int(row[0]))
    for pid in patients:
        conn.execute("DELETE FROM patients WHERE id = ? AND NOT EXISTS "
                     "(SELECT 1 FROM studies WHERE patient = ?)", (pid, pid))


def _place(conn: sqlite3.Connection, attrs: dict[str, str] | Any,
           orphans: tuple[set[int], set[int], set[int]]) -> int | None:
    """The series row of an instance (with its study and patient), None if it has
    no Study or Series Instance UID."""
    study_uid, series_uid = attrs.get("StudyInstanceUID", ""), attrs.get("SeriesInstanceUID", "")
    if not study_uid or not series_uid:
        return None
    get = attrs.get
    old_patient = _parent(conn, "studies", "patient", "study_uid", study_uid)
    patient = _upsert(conn, "patients", "patient_id", get("PatientID", ""), {
        "patient_name": get("PatientName", ""), "birth_date": get("PatientBirthDate", ""),
        "sex": get("PatientSex", "")})
    old_study = _parent(conn, "series", "study", "series_uid", series_uid)
    study = _upsert(conn, "studies", "study_uid", study_uid, {
        "patient": patient, "study_date": get("StudyDate", ""),
        "study_time": get("StudyTime", ""), "accession": get("AccessionNumber", ""),
        "study_id": get("StudyID", ""), "referring": get("ReferringPhysicianName", ""),
        "description": get("StudyDescription", "")})
    series = _upsert(conn, "series", "series_uid", series_uid, {
        "study": study, "modality": get("Modality", ""),
        "series_number": get("SeriesNumber", ""), "description": get("SeriesDescription", "")})
    if old_patient is not None and old_patient != patient:
        orphans[2].add(old_patient)
    if old_study is not None and old_study != study:
        orphans[1].add(old_study)
    return series


def _forget(conn: sqlite3.Connection, sop_instance_uid: str, orphans: set[int]) -> int | None:
    """Drop the instance's row (its series noted in ``orphans``); its rowid, None if
    it had no row."""
    row = conn.execute("SELECT rowid, series FROM instances WHERE sop_instance_uid = ?",
                       (sop_instance_uid,)).fetchone()
    if row is None:
        return None
    if row[1] is not None:
        orphans.add(int(row[1]))
    conn.execute("DELETE FROM instances WHERE rowid = ?", (row[0],))
    return int(row[0])


def add_records(conn: sqlite3.Connection, records: Iterable[InstanceRecord],
                now: float) -> int:
    """Index each record (in the caller's transaction); the count."""
    orphans: tuple[set[int], set[int], set[int]] = (set(), set(), set())
    count = 0
    for rec in records:
        old = conn.execute("SELECT sop_instance_uid FROM files WHERE path = ?",
                           (rec.path,)).fetchone()
        if old is not None and old[0] != rec.sop_instance_uid:
            # the file held another instance: it no longer vouches for that one
            row = conn.execute("SELECT path FROM instances WHERE sop_instance_uid = ?",
                               (old[0],)).fetchone()
            if row is not None and row[0] == rec.path:
                _forget(conn, old[0], orphans[0])
        # a replaced instance keeps its rowid, the IMAGE level's keyset: a query
        # streaming meanwhile meets it once, before or after the change, never twice
        rowid = _forget(conn, rec.sop_instance_uid, orphans[0])
        series = _place(conn, rec.attrs, orphans)
        conn.execute(
            "INSERT INTO instances (rowid, sop_instance_uid, sop_class_uid, path, indexed_at, "
            "series, instance_number, transfer_syntax, size) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rowid, rec.sop_instance_uid, rec.sop_class_uid, rec.path, now, series,
             rec.attrs.get("InstanceNumber", ""), rec.transfer_syntax, rec.size))
        if rec.mtime_ns:
            conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                         (rec.path, rec.size, rec.mtime_ns, rec.sop_instance_uid))
        else:
            conn.execute("DELETE FROM files WHERE path = ?", (rec.path,))
        count += 1
    _prune(conn, *orphans)
    return count


def remove_instance(conn: sqlite3.Connection, sop_instance_uid: str) -> bool:
    orphans: set[int] = set()
    path = archived_path(conn, sop_instance_uid)
    if _forget(conn, sop_instance_uid, orphans) is None:
        return False
    if path is not None:
        conn.execute("DELETE FROM files WHERE path = ? AND sop_instance_uid = ?",
                     (path, sop_instance_uid))
    _prune(conn, orphans, set(), set())
    return True


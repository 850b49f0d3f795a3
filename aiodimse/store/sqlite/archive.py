"""The archive index in SQLite: records in, matches out, a bounded batch at a time.

The queries are ``archive_sql``'s (shared with PostgreSQL), in SQLite's dialect:
``?`` marks; ``pattern`` is GLOB (case-sensitive; DICOM's ``*``/``?`` are GLOB's,
a literal ``[`` is bracketed); ``fold`` (person names) is ``= COLLATE NOCASE``
and LIKE (``%``/``_``, with ``\\`` escaping literal ``%``, ``_`` and ``\\``),
SQLite's NOCASE and LIKE folding ASCII only. Writing is here: one transaction
(``BEGIN IMMEDIATE``, so one writer at a time) per batch of records.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from ..archive_sql import (
    Dialect,
    count_retrieve_sql,
    like_pattern,
    match_row,
    match_sql,
    retrieve_sql,
)
from ..records import IndexQuery, InstanceRecord, RetrieveItem

__all__ = ["add_records", "index_instance", "index_record", "match_batch", "retrieve_batch",
           "count_retrieve", "archived_path", "remove_instance", "glob_pattern", "SQLITE"]


def glob_pattern(pattern: str) -> str:
    """DICOM's ``*``/``?`` pattern as GLOB's: ``[`` (GLOB's only other special
    character outside brackets) is taken literally."""
    return pattern.replace("[", "[[]")


class _SQLite(Dialect):
    instance_id = "rowid"

    def mark(self, params: list[Any], value: Any) -> str:
        params.append(value)
        return "?"

    def fold_equal(self, expr: str, value: str, params: list[Any]) -> str:
        return f"{expr} = {self.mark(params, value)} COLLATE NOCASE"

    def pattern(self, expr: str, pattern: str, fold: bool, params: list[Any]) -> str:
        if fold:
            return f"{expr} LIKE {self.mark(params, like_pattern(pattern))} ESCAPE '\\'"
        return f"{expr} GLOB {self.mark(params, glob_pattern(pattern))}"

    def joined(self, source: str, expr: str) -> str:
        return (f"(SELECT group_concat(v, '\\') FROM (SELECT DISTINCT {expr} AS v "
                f"FROM {source} AND {expr} <> '' ORDER BY v))")


SQLITE = _SQLite()


def match_batch(conn: sqlite3.Connection, query: IndexQuery, after: int, limit: int
                ) -> tuple[list[dict[str, str]], int]:
    """The next ``limit`` matches after id ``after``, and the last id read."""
    st = match_sql(SQLITE, query, after, limit)
    rows: list[dict[str, str]] = []
    last = after
    for row in conn.execute(st.sql, st.params):
        last = int(row[0])
        rows.append(match_row(query.keys, row[1:]))
    return rows, last


def retrieve_batch(conn: sqlite3.Connection, query: IndexQuery, after: int, limit: int
                   ) -> tuple[list[RetrieveItem], int]:
    """The next ``limit`` instances under ``query``'s matches, and the last id read."""
    st = retrieve_sql(SQLITE, query, after, limit)
    items: list[RetrieveItem] = []
    last = after
    for row in conn.execute(st.sql, st.params):
        last = int(row[0])
        items.append(RetrieveItem(row[1], row[2], row[3], row[4]))
    return items, last


def count_retrieve(conn: sqlite3.Connection, query: IndexQuery) -> int:
    st = count_retrieve_sql(SQLITE, query)
    return int(conn.execute(st.sql, st.params).fetchone()[0])


def archived_path(conn: sqlite3.Connection, sop_instance_uid: str) -> str | None:
    row = conn.execute("SELECT path FROM instances WHERE sop_instance_uid = ?",
                       (sop_instance_uid,)).fetchone()
    return None if row is None else row[0]


# -- writing ---------------------------------------------------------------------------

_LEVEL_COLUMNS = {  # each level table's key and value columns, as _place fills them
    "patients": ("patient_id", ("patient_name", "birth_date", "sex")),
    "studies": ("study_uid", ("patient", "study_date", "study_time", "accession",
                              "study_id", "referring", "description")),
    "series": ("series_uid", ("study", "modality", "series_number", "description")),
}
_UPSERT_SQL = {  # table: (its row's id and values by key, the upsert)
    table: (f"SELECT id, {', '.join(columns)} FROM {table} WHERE {key} = ?",
            f"INSERT INTO {table} ({key}, {', '.join(columns)}) "
            f"VALUES ({', '.join('?' * (len(columns) + 1))}) ON CONFLICT ({key}) "
            f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in columns)}")
    for table, (key, columns) in _LEVEL_COLUMNS.items()
}


def _upsert(conn: sqlite3.Connection, table: str, key: str, values: tuple[Any, ...]
            ) -> tuple[int, Any]:
    """Insert or update the row of level ``table`` keyed ``key`` with ``values`` (its
    ``_LEVEL_COLUMNS``; the latest instance's win): (its id, its first value before,
    None if new: the parent it had). A row holding these values already is not
    written (the usual instance of a known series: no page of the level tables
    goes into the transaction)."""
    select, upsert = _UPSERT_SQL[table]
    row = conn.execute(select, (key,)).fetchone()
    if row is not None and tuple(row[1:]) == values:
        return int(row[0]), row[1]
    conn.execute(upsert, (key, *values))
    if row is not None:
        return int(row[0]), row[1]
    return int(conn.execute(select, (key,)).fetchone()[0]), None


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
    patient, _ = _upsert(conn, "patients", get("PatientID", ""), (
        get("PatientName", ""), get("PatientBirthDate", ""), get("PatientSex", "")))
    study, old_patient = _upsert(conn, "studies", study_uid, (
        patient, get("StudyDate", ""), get("StudyTime", ""), get("AccessionNumber", ""),
        get("StudyID", ""), get("ReferringPhysicianName", ""), get("StudyDescription", "")))
    series, old_study = _upsert(conn, "series", series_uid, (
        study, get("Modality", ""), get("SeriesNumber", ""), get("SeriesDescription", "")))
    if old_patient is not None and old_patient != patient:
        orphans[2].add(int(old_patient))
    if old_study is not None and old_study != study:
        orphans[1].add(int(old_study))
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
        index_record(conn, rec, now, orphans)
        count += 1
    _prune(conn, *orphans)
    return count


def index_instance(conn: sqlite3.Connection, rec: InstanceRecord, now: float) -> str | None:
    """``add_records`` of one record; where the instance's file was before."""
    orphans: tuple[set[int], set[int], set[int]] = (set(), set(), set())
    before = index_record(conn, rec, now, orphans)
    _prune(conn, *orphans)
    return before


def index_record(conn: sqlite3.Connection, rec: InstanceRecord, now: float,
                 orphans: tuple[set[int], set[int], set[int]]) -> str | None:
    """Index one record (in the caller's transaction, ``_prune`` of ``orphans``
    after); where the instance's file was before, None if it was not indexed."""
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
    held = conn.execute("SELECT rowid, series, path FROM instances WHERE "
                        "sop_instance_uid = ?", (rec.sop_instance_uid,)).fetchone()
    rowid = None
    if held is not None:
        if held[1] is not None:
            orphans[0].add(int(held[1]))
        conn.execute("DELETE FROM instances WHERE rowid = ?", (held[0],))
        rowid = int(held[0])
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
    return None if held is None else str(held[2]) if held[2] is not None else None


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


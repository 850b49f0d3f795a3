"""The archive index on PostgreSQL, written by several nodes at once.

The queries are ``archive_sql``'s in PostgreSQL's dialect: ``$n`` marks; the
tables' text is in the "C" collation (schema step 2), so comparisons and order
are bytewise and ``lower`` folds ASCII only, as the matching rules want; a
pattern is LIKE with ``\\`` escaping; a folded comparison lowers both sides
(the value in Python, ASCII only).

Writing (``add_records``, ``remove_instance``): one transaction per call, as on
SQLite, but not one writer at a time: nodes write concurrently, so

- a patient, study and series are upserted (``INSERT ... ON CONFLICT DO
  UPDATE``) in one statement, top-down: two nodes storing into one new study
  both succeed, one row each (the second waits for the first's row lock, then
  updates); the latest instance's attributes win, as on SQLite;
- an instance is locked (``FOR UPDATE``) before it is replaced, and inserted with
  ``ON CONFLICT DO NOTHING``: one stored by another node meanwhile is locked and
  updated instead, never a unique violation;
- an emptied series, study or patient is pruned under row locks taken top-down
  (the upserts' order), each delete checked against what is committed by then,
  so an instance another node just put under it keeps it;
- two transactions that still lock in opposite orders (batches) are one
  deadlock, which PostgreSQL breaks by failing one: that one runs again
  (``ATTEMPTS``), whole, as nothing of it was kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from ..archive_sql import (
    Dialect,
    ascii_lower,
    count_retrieve_sql,
    like_pattern,
    match_row,
    match_sql,
    retrieve_sql,
)
from ..records import IndexQuery, InstanceRecord, RetrieveItem

__all__ = ["POSTGRESQL", "ATTEMPTS", "add_records", "index_instance", "remove_instance",
           "archived_path", "match_batch", "retrieve_batch", "count_retrieve"]

ATTEMPTS = 5  # runs of a writing transaction that PostgreSQL failed for a deadlock


def _text(value: str) -> str:
    """``value`` as PostgreSQL's text can hold it: without NUL characters (no valid
    DICOM string has one inside; a peer's that does is kept without them, where
    SQLite would keep them)."""
    return value.replace("\x00", "") if "\x00" in value else value


class _PostgreSQL(Dialect):
    # the series' ids first, then each one's instances through the index (a join
    # planned without statistics scans every instance once per study)
    study_instances = ("instances x WHERE x.series = ANY (ARRAY(SELECT y.id FROM series y "
                       "WHERE y.study = s.id))")

    def mark(self, params: list[Any], value: Any) -> str:
        params.append(_text(value) if isinstance(value, str) else value)
        return f"${len(params)}"

    def fold_equal(self, expr: str, value: str, params: list[Any]) -> str:
        return f'lower({expr} COLLATE "C") = {self.mark(params, ascii_lower(value))}'

    def pattern(self, expr: str, pattern: str, fold: bool, params: list[Any]) -> str:
        if fold:
            mark = self.mark(params, ascii_lower(like_pattern(pattern)))
            return f"lower({expr} COLLATE \"C\") LIKE {mark} ESCAPE '\\'"
        return f"{expr} COLLATE \"C\" LIKE {self.mark(params, like_pattern(pattern))} " \
               "ESCAPE '\\'"

    def joined(self, source: str, expr: str) -> str:
        value = f'{expr} COLLATE "C"'
        return (f"(SELECT string_agg(DISTINCT {value}, '\\' ORDER BY {value}) "
                f"FROM {source} AND {expr} <> '')")


POSTGRESQL = _PostgreSQL()


# -- reading ---------------------------------------------------------------------------

async def match_batch(conn: Any, query: IndexQuery, after: int, limit: int
                      ) -> tuple[list[dict[str, str]], int]:
    """The next ``limit`` matches after id ``after``, and the last id read."""
    st = match_sql(POSTGRESQL, query, after, limit)
    records = await conn.fetch(st.sql, *st.params)
    rows = [match_row(query.keys, tuple(r)[1:]) for r in records]
    return rows, int(records[-1][0]) if records else after


async def retrieve_batch(conn: Any, query: IndexQuery, after: int, limit: int
                         ) -> tuple[list[RetrieveItem], int]:
    """The next ``limit`` instances under ``query``'s matches, and the last id read."""
    st = retrieve_sql(POSTGRESQL, query, after, limit)
    records = await conn.fetch(st.sql, *st.params)
    items = [RetrieveItem(r[1], r[2], r[3], r[4]) for r in records]
    return items, int(records[-1][0]) if records else after


async def count_retrieve(conn: Any, query: IndexQuery) -> int:
    st = count_retrieve_sql(POSTGRESQL, query)
    return int(await conn.fetchval(st.sql, *st.params))


async def archived_path(conn: Any, sop_instance_uid: str) -> str | None:
    path: str | None = await conn.fetchval(
        "SELECT path FROM instances WHERE sop_instance_uid = $1", sop_instance_uid)
    return path


# -- writing ---------------------------------------------------------------------------

# A patient, its study and the series, upserted top-down in one statement, with
# the study's and the series' parents before it (read in the statement's snapshot).
_PLACE = """
op AS (SELECT patient FROM studies WHERE study_uid = $5),
os AS (SELECT study FROM series WHERE series_uid = $12),
p AS (INSERT INTO patients (patient_id, patient_name, birth_date, sex)
      VALUES ($1, $2, $3, $4) ON CONFLICT (patient_id) DO UPDATE SET
      patient_name = EXCLUDED.patient_name, birth_date = EXCLUDED.birth_date,
      sex = EXCLUDED.sex RETURNING id),
s AS (INSERT INTO studies (study_uid, patient, study_date, study_time, accession, study_id,
      referring, description) SELECT $5, p.id, $6, $7, $8, $9, $10, $11 FROM p
      ON CONFLICT (study_uid) DO UPDATE SET patient = EXCLUDED.patient,
      study_date = EXCLUDED.study_date, study_time = EXCLUDED.study_time,
      accession = EXCLUDED.accession, study_id = EXCLUDED.study_id,
      referring = EXCLUDED.referring, description = EXCLUDED.description RETURNING id),
r AS (INSERT INTO series (series_uid, study, modality, series_number, description)
      SELECT $12, s.id, $13, $14, $15 FROM s ON CONFLICT (series_uid) DO UPDATE SET
      study = EXCLUDED.study, modality = EXCLUDED.modality,
      series_number = EXCLUDED.series_number, description = EXCLUDED.description
      RETURNING id),
"""
_PLACE_KEYS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
               "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
               "ReferringPhysicianName", "StudyDescription",
               "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription")


def _write(n: int, placed: bool, replace: bool) -> str:
    """CTEs writing the instance (under the series ``r`` if ``placed``; replacing
    the row if ``replace``, else only if new) and its file's stat (mtime 0: the
    path's stat dropped). Parameters from ``$n``: SOP Instance UID, SOP Class UID,
    path, time, Instance Number, transfer syntax, size, mtime."""
    uid, cls, path, now, number, syntax, size, mtime = (f"${n + k}" for k in range(8))
    action = ("UPDATE SET sop_class_uid = EXCLUDED.sop_class_uid, path = EXCLUDED.path, "
              "indexed_at = EXCLUDED.indexed_at, series = EXCLUDED.series, "
              "instance_number = EXCLUDED.instance_number, "
              "transfer_syntax = EXCLUDED.transfer_syntax, size = EXCLUDED.size"
              if replace else "NOTHING")
    series, source = ("r.id", " FROM r") if placed else ("NULL::bigint", "")
    return (
        "i AS (INSERT INTO instances (sop_instance_uid, sop_class_uid, path, indexed_at, "
        f"series, instance_number, transfer_syntax, size) SELECT {uid}::text, {cls}::text, "
        f"{path}::text, {now}::float8, {series}, {number}::text, {syntax}::text, "
        f"{size}::bigint{source} ON CONFLICT (sop_instance_uid) DO {action} RETURNING 1), "
        f"f AS (INSERT INTO files SELECT {path}::text, {size}::bigint, {mtime}::bigint, "
        f"{uid}::text WHERE {mtime}::bigint <> 0 ON CONFLICT (path) DO UPDATE SET "
        "size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns, "
        "sop_instance_uid = EXCLUDED.sop_instance_uid), "
        f"g AS (DELETE FROM files WHERE path = {path}::text AND {mtime}::bigint = 0) ")


# One statement per record: placed (patient, study, series, instance, file stat),
# or not (no Study or Series Instance UID: the instance and its stat alone); it
# says whether the instance was written (not: another node indexed it meanwhile).
_STORE = {
    (True, replace): "WITH " + _PLACE + _write(16, True, replace) +
    "SELECT p.id, s.id, r.id, (SELECT patient FROM op), (SELECT study FROM os), "
    "EXISTS (SELECT 1 FROM i) FROM p, s, r" for replace in (False, True)
} | {
    (False, replace): "WITH " + _write(1, False, replace) + "SELECT EXISTS (SELECT 1 FROM i)"
    for replace in (False, True)
}

# What a record meets: the instance its file's stat vouches for, and the instance
# itself, locked until the transaction ends (``found``: it is indexed).
# (``path``: where its file was.)
_FIND = ("SELECT f.sop_instance_uid, i.found, i.series, i.path FROM (SELECT 1) one "
         "LEFT JOIN files f ON f.path = $2 LEFT JOIN (SELECT true AS found, series, path "
         "FROM instances WHERE sop_instance_uid = $1 FOR UPDATE) i ON true")
_HELD = "SELECT series, path FROM instances WHERE sop_instance_uid = $1 FOR UPDATE"

_Orphans = tuple[set[int], set[int], set[int]]  # series, studies, patients to check


async def _forget(conn: Any, sop_instance_uid: str, orphans: set[int]) -> bool:
    series = await conn.fetchrow("DELETE FROM instances WHERE sop_instance_uid = $1 "
                                 "RETURNING series", sop_instance_uid)
    if series is None:
        return False
    if series[0] is not None:
        orphans.add(int(series[0]))
    return True


async def _index(conn: Any, rec: InstanceRecord, now: float, orphans: _Orphans
                 ) -> str | None:
    """Index one record in the caller's transaction: two statements, unless the
    file held another instance or another node indexes this one meanwhile; where
    the instance's file was (None: not indexed)."""
    uid, attrs = rec.sop_instance_uid, rec.attrs
    vouched, found, old_series, old_path = await conn.fetchrow(_FIND, uid, rec.path)
    if vouched is not None and vouched != uid:
        # the file held another instance: it no longer vouches for that one
        await _forget_at(conn, vouched, rec.path, orphans[0])
    placed = bool(attrs.get("StudyInstanceUID", "") and attrs.get("SeriesInstanceUID", ""))
    args: list[Any] = [_text(attrs.get(k, "")) for k in _PLACE_KEYS] if placed else []
    args += [uid, rec.sop_class_uid, rec.path, now, _text(attrs.get("InstanceNumber", "")),
             rec.transfer_syntax, rec.size, rec.mtime_ns]
    while True:
        row = await conn.fetchrow(_STORE[placed, bool(found)], *args)
        if row[-1]:
            break
        # indexed by another node since _FIND: lock it, then replace it
        held = await conn.fetchrow(_HELD, uid)
        found = held is not None
        old_series, old_path = (None, None) if held is None else (held[0], held[1])
    series = None
    if placed:
        patient, study, series, old_patient, old_study, _ = row
        if old_patient is not None and old_patient != patient:
            orphans[2].add(int(old_patient))
        if old_study is not None and old_study != study:
            orphans[1].add(int(old_study))
    if found and old_series is not None and old_series != series:
        orphans[0].add(int(old_series))
    return old_path if found else None


async def _forget_at(conn: Any, sop_instance_uid: str, path: str, orphans: set[int]) -> None:
    """Forget an instance if it is still indexed at ``path``."""
    series = await conn.fetchrow("DELETE FROM instances WHERE sop_instance_uid = $1 "
                                 "AND path = $2 RETURNING series", sop_instance_uid, path)
    if series is not None and series[0] is not None:
        orphans.add(int(series[0]))


async def _prune(conn: Any, orphans: _Orphans) -> None:
    """Drop those of the given series, studies and patients (and the studies and
    patients above the series) left without children. The rows are locked
    top-down first, then each delete checks, in a snapshot taken after the locks,
    that nothing is under the row: a node that was putting an instance under it
    has committed by then, or waits for this one and makes the row anew."""
    series, studies, patients = (sorted(s) for s in orphans)
    if series:
        for study, patient in await conn.fetch(
                "SELECT r.study, s.patient FROM series r JOIN studies s ON s.id = r.study "
                "WHERE r.id = ANY($1::bigint[])", series):
            studies.append(int(study))
            patients.append(int(patient))
    if studies:
        patients += [int(r[0]) for r in await conn.fetch(
            "SELECT patient FROM studies WHERE id = ANY($1::bigint[])", studies)]
    if not (series or studies or patients):
        return
    for table, ids in (("patients", patients), ("studies", studies), ("series", series)):
        if ids:
            await conn.execute(f"SELECT 1 FROM {table} WHERE id = ANY($1::bigint[]) "
                               "ORDER BY id FOR UPDATE", sorted(set(ids)))
    for table, ids, child, column in (("series", series, "instances", "series"),
                                      ("studies", studies, "series", "study"),
                                      ("patients", patients, "studies", "patient")):
        if ids:
            await conn.execute(f"DELETE FROM {table} t WHERE t.id = ANY($1::bigint[]) AND "
                               f"NOT EXISTS (SELECT 1 FROM {child} c WHERE c.{column} = t.id)",
                               sorted(set(ids)))


async def _retrying(conn: Any, body: Any) -> Any:
    """``await body()`` in a transaction, run again (up to ``ATTEMPTS``) when
    PostgreSQL failed it for a deadlock or a serialization conflict."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with conn.transaction():
                return await body()
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def add_records(conn: Any, records: Sequence[InstanceRecord], now: float) -> int:
    """Index each record, in order (the latest gives its patient, study and series
    their attributes), in one transaction run again whole after a deadlock; the
    count."""
    async def body() -> int:
        orphans: _Orphans = (set(), set(), set())
        for rec in records:
            await _index(conn, rec, now, orphans)
        await _prune(conn, orphans)
        return len(records)
    return int(await _retrying(conn, body))


async def index_instance(conn: Any, record: InstanceRecord, now: float) -> str | None:
    """``add_records`` of one record; where the instance's file was before."""
    async def body() -> str | None:
        orphans: _Orphans = (set(), set(), set())
        before = await _index(conn, record, now, orphans)
        await _prune(conn, orphans)
        return before
    before: str | None = await _retrying(conn, body)
    return before


async def remove_instance(conn: Any, sop_instance_uid: str) -> bool:
    async def body() -> bool:
        orphans: set[int] = set()
        path = await archived_path(conn, sop_instance_uid)
        if not await _forget(conn, sop_instance_uid, orphans):
            return False
        if path is not None:
            await conn.execute("DELETE FROM files WHERE path = $1 AND sop_instance_uid = $2",
                               path, sop_instance_uid)
        await _prune(conn, (orphans, set(), set()))
        return True
    return bool(await _retrying(conn, body))

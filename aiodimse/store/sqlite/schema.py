"""The SQLite schema, its version (``PRAGMA user_version``) and the upgrades to it.

Version 0 (before the delivery queue was its own concern) kept each commitment's
report state in its ``commitments`` row; version 1 moves that into ``deliveries``,
the queue every service's N-EVENT-REPORTs share, and keeps in ``commitments`` the
transaction alone. Version 2 adds ``files`` (each indexed file's size and mtime,
so a rescan skips the unchanged ones without reading them) and ``meta`` (named
values: whether ``serve``'s start-up scan is done); an older database gains the two
tables empty, so its first scan reads every file once. Version 3 adds the archive
index: ``patients``, ``studies`` and ``series`` (the Query/Retrieve attributes of
each level, keyed by its unique key) and, in ``instances``, the series, instance
number, transfer syntax and size; rows indexed before keep NULL there (found by
storage commitment, by no query) until their file is read again: an older
database's ``files`` table is emptied so the next scan reads every file once and
fills the new columns. Version 4 adds the Unified Procedure Step tables:
``ups_workitems`` (the workitems: the data set and the columns a C-FIND narrows
by), ``ups_subscriptions`` (AE and workitem, with its deletion lock) and
``ups_global_subscriptions`` (one per AE, its filter and whether it is
suspended); an older database gains them empty, and ``deliveries`` an index by
destination (a claim for one destination among thousands due reads its own). An upgrade runs in one
``BEGIN IMMEDIATE`` transaction, so a crash leaves the old schema whole, and
workers opening together upgrade once.
"""

from __future__ import annotations

import sqlite3

__all__ = ["VERSION", "SchemaError", "prepare"]

VERSION = 4

_TABLES = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid TEXT NOT NULL,
    path TEXT,
    indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sop_instance_uid TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS patients (
    id INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL UNIQUE,
    patient_name TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    sex TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    study_uid TEXT NOT NULL UNIQUE,
    patient INTEGER NOT NULL,
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    accession TEXT NOT NULL DEFAULT '',
    study_id TEXT NOT NULL DEFAULT '',
    referring TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS studies_patient ON studies (patient);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    series_uid TEXT NOT NULL UNIQUE,
    study INTEGER NOT NULL,
    modality TEXT NOT NULL DEFAULT '',
    series_number TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS series_study ON series (study);
CREATE TABLE IF NOT EXISTS mpps (
    sop_instance_uid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    dataset TEXT NOT NULL,
    calling_aet TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ups_workitems (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sop_instance_uid TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    transaction_uid TEXT,
    patient_id TEXT NOT NULL DEFAULT '',
    scheduled_start TEXT NOT NULL DEFAULT '',
    worklist_label TEXT NOT NULL DEFAULT '',
    dataset BLOB NOT NULL,
    calling_aet TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ups_workitems_state ON ups_workitems (state, scheduled_start);
CREATE INDEX IF NOT EXISTS ups_workitems_patient ON ups_workitems (patient_id);
CREATE TABLE IF NOT EXISTS ae_usage (
    calling_aet TEXT NOT NULL,
    service TEXT NOT NULL,
    window_start REAL NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (calling_aet, service)
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    destination TEXT NOT NULL,
    ordering TEXT,
    sop_class TEXT NOT NULL,
    sop_instance TEXT NOT NULL,
    event_type INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    deadline REAL NOT NULL,
    next_attempt REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    delivered_at REAL,
    result TEXT,
    UNIQUE (kind, key)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt);
CREATE INDEX IF NOT EXISTS deliveries_order ON deliveries (destination, ordering, state, id)
    WHERE ordering IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_destination ON deliveries (destination, state,
    next_attempt);
CREATE TABLE IF NOT EXISTS ups_subscriptions (
    workitem TEXT NOT NULL,
    aet TEXT NOT NULL,
    deletion_lock INTEGER NOT NULL,
    PRIMARY KEY (workitem, aet)
);
CREATE INDEX IF NOT EXISTS ups_subscriptions_aet ON ups_subscriptions (aet);
CREATE TABLE IF NOT EXISTS ups_global_subscriptions (
    aet TEXT PRIMARY KEY,
    deletion_lock INTEGER NOT NULL,
    filter TEXT,
    suspended INTEGER NOT NULL DEFAULT 0
)
"""

# Version 3's columns of ``instances`` (a new database gets them the same way).
_INSTANCE_COLUMNS = """
ALTER TABLE instances ADD COLUMN series INTEGER;
ALTER TABLE instances ADD COLUMN instance_number TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN transfer_syntax TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN size INTEGER;
CREATE INDEX IF NOT EXISTS instances_series ON instances (series)
"""

_COMMITMENTS = """
CREATE TABLE IF NOT EXISTS commitments (
    transaction_uid TEXT PRIMARY KEY,
    calling_aet TEXT NOT NULL,
    received_at REAL NOT NULL
)
"""

# Version 0's commitment rows become queued reports (kind "commitment", the Storage
# Commitment Push Model class and its well-known instance), in the order received.
_FROM_0 = """
INSERT INTO deliveries (kind, key, destination, ordering, sop_class, sop_instance,
    event_type, payload, state, created_at, deadline, next_attempt, attempts,
    lease_owner, lease_until, last_error, delivered_at, result)
SELECT 'commitment', transaction_uid, calling_aet, NULL, '1.2.840.10008.1.20.1',
    '1.2.840.10008.1.20.1.1', 0, refs, state, received_at, deadline, next_attempt,
    attempts, lease_owner, lease_until, last_error, delivered_at, result
FROM commitments ORDER BY received_at, rowid;
CREATE TABLE commitments_1 (
    transaction_uid TEXT PRIMARY KEY,
    calling_aet TEXT NOT NULL,
    received_at REAL NOT NULL
);
INSERT INTO commitments_1 SELECT transaction_uid, calling_aet, received_at FROM commitments;
DROP TABLE commitments;
ALTER TABLE commitments_1 RENAME TO commitments
"""


class SchemaError(Exception):
    """The database has a schema this version cannot use (a newer one)."""


def _run(conn: sqlite3.Connection, script: str) -> None:
    """Each statement of ``script`` in the open transaction (``executescript``
    would commit it first)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}


def prepare(conn: sqlite3.Connection) -> int:
    """Create or upgrade the schema to ``VERSION``; returns the version found.

    ``conn`` is in autocommit mode (``isolation_level=None``) and not in a
    transaction. Raises SchemaError for a database newer than this code.
    """
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found == VERSION:
        return found
    if found > VERSION:
        raise SchemaError(f"the database has schema version {found}; this aiodimse "
                          f"knows up to {VERSION} (a newer aiodimse wrote it)")
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])  # under the lock
        if found < VERSION:
            _run(conn, _TABLES)
            if "next_attempt" in _columns(conn, "commitments"):  # version 0's table
                _run(conn, _FROM_0)
            _run(conn, _COMMITMENTS)
            if "series" not in _columns(conn, "instances"):
                _run(conn, _INSTANCE_COLUMNS)
                conn.execute("DELETE FROM files")  # read each file again: version 3's columns
            conn.execute(f"PRAGMA user_version = {VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found

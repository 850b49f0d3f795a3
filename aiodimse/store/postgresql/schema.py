"""The PostgreSQL schema, its version (table ``schema_version``) and the steps to it.

Every node runs ``prepare`` when its pool first connects. The steps run in one
transaction under a transaction-level advisory lock, so nodes starting together
upgrade once (the others wait, then find the version done) and a crash leaves the
old schema whole (DDL is transactional in PostgreSQL). ``STEPS[n]`` takes version
n to n + 1; a database newer than this code is refused, not used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VERSION", "STEPS", "LOCK_KEY", "SchemaError", "prepare"]

LOCK_KEY = 0x61696F64696D7365 & 0x7FFFFFFFFFFFFFFF  # "aiodimse": one bigint advisory lock

_V1 = """
CREATE TABLE instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid TEXT NOT NULL,
    path TEXT,
    indexed_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE files (
    path TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    sop_instance_uid TEXT NOT NULL
);
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE mpps (
    sop_instance_uid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    dataset TEXT NOT NULL,
    calling_aet TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE ae_usage (
    calling_aet TEXT NOT NULL,
    service TEXT NOT NULL,
    window_start DOUBLE PRECISION NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (calling_aet, service)
);
CREATE TABLE deliveries (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    destination TEXT NOT NULL,
    ordering TEXT,
    sop_class TEXT NOT NULL,
    sop_instance TEXT NOT NULL,
    event_type INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    deadline DOUBLE PRECISION NOT NULL,
    next_attempt DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    last_error TEXT,
    delivered_at DOUBLE PRECISION,
    result TEXT,
    UNIQUE (kind, key)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt) WHERE state = 'pending';
CREATE INDEX deliveries_order ON deliveries (destination, ordering, id)
    WHERE ordering IS NOT NULL AND state = 'pending';
CREATE TABLE commitments (
    transaction_uid TEXT PRIMARY KEY,
    calling_aet TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL
)
"""

STEPS: tuple[str, ...] = (_V1,)
VERSION = len(STEPS)


class SchemaError(Exception):
    """The database has a schema this version cannot use (a newer one)."""


async def prepare(conn: Any, steps: tuple[str, ...] = STEPS) -> int:
    """Create or upgrade the schema to ``len(steps)``; returns the version found.

    ``conn`` is an asyncpg connection outside a transaction. Raises SchemaError for
    a database newer than this code.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = await conn.fetchval("SELECT max(version) FROM schema_version")
        found = 0 if found is None else int(found)
        if found > len(steps):
            raise SchemaError(f"the database has schema version {found}; this aiodimse "
                              f"knows up to {len(steps)} (a newer aiodimse wrote it)")
        for step in steps[found:]:
            for statement in step.split(";"):
                if statement.strip():
                    await conn.execute(statement)
        if found < len(steps):
            await conn.execute("DELETE FROM schema_version")
            await conn.execute("INSERT INTO schema_version VALUES ($1)", len(steps))
    return found

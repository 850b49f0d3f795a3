"""UPS workitems and subscriptions on PostgreSQL: ``ups_sql``'s statements, numbered.

Nodes share the rows, so a change must not be lost to another node's at the same
moment. ``update`` is a compare-and-set: read the row with its version (``xmin``,
new at every write), let ``change`` decide, write only if the version is the same,
else read again. Two nodes claiming one workitem: the second write finds the
version changed, reads the row IN PROGRESS, and ``change`` refuses it (0xC302).
No transaction is held open while ``change`` runs, which is why it must be pure
(``UPSWorkitems.ups_update``).

Reports queued with a change (``queue``) are one statement for any number of them
(arrays unnested, in order, so queue order is list order), with the ``NOTIFY``
that wakes the other nodes' deliverers when any was new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .. import ups_sql
from ..interface import Delivery, UPSGlobalSubscription, WorkitemQuery, WorkitemRow
from ..ups_sql import numbered
from .archive import POSTGRESQL
from .notify import CHANNEL

__all__ = ["insert", "get", "update", "match_batch", "queue", "subscribe",
           "subscribe_global", "created", "unsubscribe", "unsubscribe_global",
           "suspend_global", "subscribers", "global_subscriptions", "locked",
           "subscriber_aets", "purge"]

T = TypeVar("T")

_INSERT = numbered(ups_sql.INSERT_WORKITEM)
_GET = numbered(ups_sql.GET_WORKITEM)
_READ = numbered(f"SELECT {ups_sql.COLUMNS}, xmin::text AS seen FROM ups_workitems "
                 "WHERE sop_instance_uid = ?")
_WRITE = numbered(ups_sql.UPDATE_WORKITEM + " AND xmin::text = ?")
_SUBSCRIBE = numbered(ups_sql.SUBSCRIBE)
_SUBSCRIBE_GLOBAL = numbered(ups_sql.SUBSCRIBE_GLOBAL)
_UNSUBSCRIBE = numbered(ups_sql.UNSUBSCRIBE)
_UNSUBSCRIBE_GLOBAL = tuple(numbered(sql) for sql in ups_sql.UNSUBSCRIBE_GLOBAL)
_SUSPEND_GLOBAL = numbered(ups_sql.SUSPEND_GLOBAL)
_SUBSCRIBERS = numbered(ups_sql.SUBSCRIBERS)
_PURGEABLE = numbered(ups_sql.PURGEABLE + " FOR UPDATE SKIP LOCKED")
_DELETE_WORKITEM = numbered(ups_sql.DELETE_WORKITEM)
_DELETE_SUBSCRIPTIONS = numbered(ups_sql.DELETE_SUBSCRIPTIONS)

# Reports in one statement, in list order, perhaps leased ($13 owner, $14 until); a
# (kind, key) queued already is skipped (one repeated within the list too); others
# are told ($12: this store's id; NULL: none) when any was new.
_QUEUE = (
    "WITH d AS (INSERT INTO deliveries (kind, key, destination, ordering, sop_class, "
    "sop_instance, event_type, payload, state, created_at, deadline, next_attempt, attempts, "
    "lease_owner, lease_until) "
    "SELECT k, y, de, o, sc, si, et, p, 'pending', c, dl, na, 0, $13::text, $14::float8 "
    "FROM unnest($1::text[], "
    "$2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], "
    "$9::float8[], $10::float8[], $11::float8[]) WITH ORDINALITY "
    "AS t(k, y, de, o, sc, si, et, p, c, dl, na, n) ORDER BY n "
    "ON CONFLICT (kind, key) DO NOTHING RETURNING 1) "
    "SELECT count(*), CASE WHEN count(*) > 0 AND $12::text IS NOT NULL "
    f"THEN pg_notify('{CHANNEL}', $12) END FROM d"
)


def _text(value: Any) -> Any:
    """A string as PostgreSQL's text can hold it (no NUL: archive.py says why)."""
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


def _args(values: Sequence[Any]) -> list[Any]:
    return [_text(v) for v in values]


# -- workitems -------------------------------------------------------------------------

async def insert(conn: Any, row: WorkitemRow, now: float) -> bool:
    done = await conn.execute(_INSERT, *_args(ups_sql.insert_args(row, now)))
    return bool(done == "INSERT 0 1")


async def get(conn: Any, uid: str) -> WorkitemRow | None:
    r = await conn.fetchrow(_GET, _text(uid))
    return None if r is None else ups_sql.workitem(r)


async def update(conn: Any, uid: str, change: Callable[[WorkitemRow | None], WorkitemRow | T],
                 now: float) -> WorkitemRow | T:
    """Read, change, write if nobody wrote between (the row's ``xmin`` is the same),
    else again: two round trips, no transaction held while ``change`` runs."""
    uid = _text(uid)
    while True:
        r = await conn.fetchrow(_READ, uid)
        new = change(None if r is None else ups_sql.workitem(r))
        if r is None or not isinstance(new, WorkitemRow):
            return new
        args = _args(ups_sql.update_args(new, now))
        args[-1] = uid  # the row read, whatever ``new`` says
        if await conn.execute(_WRITE, *args, r["seen"]) == "UPDATE 1":
            return new


async def match_batch(conn: Any, query: WorkitemQuery, after: int, limit: int
                      ) -> tuple[list[WorkitemRow], int]:
    """Up to ``limit`` rows ``query`` narrows to with id > ``after``; and the last id."""
    st = ups_sql.match_sql(POSTGRESQL, query, after, limit)
    rows = await conn.fetch(st.sql, *st.params)
    return [ups_sql.workitem(r) for r in rows], (int(rows[-1]["id"]) if rows else after)


# -- reports ---------------------------------------------------------------------------

async def queue(conn: Any, reports: Sequence[Delivery], me: str, *,
                owner: str | None = None, lease_until: float | None = None) -> int:
    """Queue ``reports``; how many were new (``me``: this store's NOTIFY payload;
    nobody is told of reports leased to ``owner`` here)."""
    if not reports:
        return 0
    columns: list[list[Any]] = [[] for _ in range(11)]
    for item in reports:
        for column, value in zip(columns, (
                item.kind, item.key, item.destination, item.ordering, item.sop_class,
                item.sop_instance, item.event_type, item.payload, item.created_at,
                item.deadline, item.next_attempt), strict=True):
            column.append(_text(value))
    row = await conn.fetchrow(_QUEUE, *columns, None if owner else me, owner, lease_until)
    return int(row[0])


# -- subscriptions ---------------------------------------------------------------------

async def subscribe(conn: Any, aet: str, workitem: str, lock: bool, *,
                    reports: Sequence[Delivery], me: str) -> None:
    await conn.execute(_SUBSCRIBE, _text(workitem), _text(aet), int(lock))
    await queue(conn, reports, me)


async def subscribe_global(conn: Any, sub: UPSGlobalSubscription, workitems: Sequence[str],
                           reports: Sequence[Delivery], me: str) -> None:
    await conn.execute(_SUBSCRIBE_GLOBAL, *_args(ups_sql.global_args(sub)))
    await created(conn, [(uid, sub.aet, sub.deletion_lock) for uid in workitems], reports, me)


async def created(conn: Any, subs: Sequence[tuple[str, str, bool]],
                  reports: Sequence[Delivery], me: str) -> None:
    """Subscribe each (workitem, AE, lock) and queue ``reports``."""
    if subs:
        await conn.executemany(_SUBSCRIBE, [(_text(w), _text(a), int(lock))
                                            for w, a, lock in subs])
    await queue(conn, reports, me)


async def unsubscribe(conn: Any, aet: str, workitem: str) -> bool:
    return bool(await conn.execute(_UNSUBSCRIBE, _text(workitem), _text(aet)) != "DELETE 0")


async def unsubscribe_global(conn: Any, aet: str) -> int:
    gone = 0
    for sql in _UNSUBSCRIBE_GLOBAL:
        gone += int((await conn.execute(sql, _text(aet))).rsplit(" ", 1)[1])
    return gone


async def suspend_global(conn: Any, aet: str) -> bool:
    return bool(await conn.execute(_SUSPEND_GLOBAL, _text(aet)) != "UPDATE 0")


async def subscribers(conn: Any, workitem: str) -> list[tuple[str, bool]]:
    return [(str(r[0]), bool(r[1])) for r in await conn.fetch(_SUBSCRIBERS, _text(workitem))]


async def global_subscriptions(conn: Any) -> list[UPSGlobalSubscription]:
    return [ups_sql.global_subscription(r)
            for r in await conn.fetch(ups_sql.GLOBAL_SUBSCRIPTIONS)]


async def locked(conn: Any) -> set[str]:
    return {str(r[0]) for r in await conn.fetch(ups_sql.LOCKED)}


async def subscriber_aets(conn: Any) -> list[str]:
    return [str(r[0]) for r in await conn.fetch(ups_sql.SUBSCRIBER_AETS)]


async def purge(conn: Any, before: float, limit: int) -> int:
    """``sqlite.ups.purge`` (in the caller's transaction); rows another node is
    changing or purging are left to a later round (``SKIP LOCKED``)."""
    rows = await conn.fetch(_PURGEABLE, before, limit)
    if rows:
        await conn.executemany(_DELETE_WORKITEM, [(r[0],) for r in rows])
        await conn.executemany(_DELETE_SUBSCRIPTIONS, [(r[1],) for r in rows])
    return len(rows)

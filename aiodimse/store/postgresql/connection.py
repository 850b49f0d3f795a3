"""The pool of connections to one PostgreSQL database, and what its failures mean.

The pool is made on first use (``open_store`` is called before the event loop runs
the server), bounded (``POOL_SIZE`` connections per process), and made again after
a failed attempt. ``serve`` reads the database before it listens, so a node started
while the database is down exits (status 1) for its supervisor to start again; one
already serving outlives an outage. A call that fails for the connection (refused,
reset, server shutting down, timed out) raises ``StoreError(unavailable=True)``
and makes the pool replace its connections (those left are likely dead too); the
outage is logged once, when it starts, and once more when the database answers
again (numbered, so that the log's folding of repeated lines never hides one).
Out of room (SQLSTATE class 53, insufficient resources) is ``full``.

Every connection commits durably: where the server's ``synchronous_commit`` is
``off`` (a commit answered before its WAL is written: a crash loses the last few),
the session sets it ``on``, since an acknowledged request must survive the
database's crash; any stronger setting (``remote_apply`` ...) is kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from ..interface import StoreError
from .schema import SchemaError, prepare

__all__ = ["POOL_SIZE", "Database", "store_error"]

log = logging.getLogger("aiodimse.store")

T = TypeVar("T")

POOL_SIZE = 8  # connections per process: the services' calls wait for one beyond that
CONNECT_TIMEOUT = 5.0  # s to connect (a host that drops packets is "unavailable" by then)
COMMAND_TIMEOUT = 30.0  # s for one statement (a lock held that long is a failure)
ACQUIRE_TIMEOUT = 30.0  # s to wait for a free connection of the pool

_UNAVAILABLE_STATES = ("08", "57P")  # connection exception; operator intervention (shutdown)


# The driver's own: a connection closed or broken under it (a server that died
# while the connection sat in the pool shows as "cannot switch to state ...").
_CLIENT_ERRORS = (asyncpg.InterfaceError, asyncpg.InternalClientError)


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, asyncio.TimeoutError, *_CLIENT_ERRORS)):
        return True
    state = getattr(exc, "sqlstate", None) or ""
    return isinstance(exc, asyncpg.PostgresError) and state.startswith(_UNAVAILABLE_STATES)


def store_error(exc: BaseException) -> StoreError:
    """The ``StoreError`` for a failure of the driver or the connection."""
    state = getattr(exc, "sqlstate", None) or ""
    return StoreError(f"PostgreSQL: {exc or type(exc).__name__}",
                      full=state.startswith("53"), unavailable=_unavailable(exc))


DB_ERRORS = (asyncpg.PostgresError, *_CLIENT_ERRORS, OSError, asyncio.TimeoutError)


# one round trip per new connection; the value is a session's, for this backend only
_DURABLE = ("SELECT set_config('synchronous_commit', 'on', false) "
            "WHERE current_setting('synchronous_commit') = 'off'")


async def _durable(conn: Any) -> None:
    """A commit answered is on disk (``synchronous_commit`` not ``off``)."""
    await conn.execute(_DURABLE)


async def _reset(conn: Any) -> None:
    """What a connection needs back in the pool: no transaction left open (a call
    cancelled midway). The driver's default (RESET ALL, UNLISTEN, ...) is a round
    trip per call for session state this backend never sets."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class Database:
    """A lazily made pool with outage tracking; ``run(fn)`` gives ``fn`` a connection."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.upgraded_from: int | None = None  # the schema version found, once prepared
        self._pool: Any = None
        self._making = asyncio.Lock()
        self._down_since: float | None = None  # monotonic start of the outage being logged
        # outages begun + ended: a call judges the state only if none turned while it ran
        # (a call on a connection from before an outage may still succeed in it; one
        # begun in an outage may fail after the database answered again)
        self._turns = 0

    async def _ensure(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._making:
            if self._pool is None:
                # min_size 0: connections as calls need them, and no background
                # refill (which logs each failed attempt while the database is down)
                pool = await asyncpg.create_pool(
                    self.dsn, min_size=0, max_size=POOL_SIZE, timeout=CONNECT_TIMEOUT,
                    command_timeout=COMMAND_TIMEOUT, reset=_reset, init=_durable)
                try:
                    async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                        self.upgraded_from = await prepare(conn)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        return self._pool

    async def run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``await fn(connection)``; the driver's failures come out as ``StoreError``."""
        seen = self._turns
        try:
            pool = await self._ensure()
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                result = await fn(conn)
        except SchemaError as exc:
            raise StoreError(str(exc)) from exc
        except asyncpg.UniqueViolationError:  # a key known already: the caller's answer
            raise
        except DB_ERRORS as exc:
            error = store_error(exc)
            if error.unavailable:
                await self._lost(error, seen)
            raise error from exc
        if self._down_since is not None and seen == self._turns:
            # begun in this outage (not on a connection from before it): it is over
            log.warning("PostgreSQL reachable again after %.1f s (outage %d)",
                        time.monotonic() - self._down_since, self._turns // 2 + 1)
            self._down_since = None
            self._turns += 1
        return result

    async def _lost(self, error: StoreError, seen: int) -> None:
        """An outage begins, unless one is logged already or the call began before
        the last turn (a call of the outage that ended, answered late: no news)."""
        if self._pool is not None:
            await self._pool.expire_connections()  # reconnect on the next acquire, not reuse
        if self._down_since is None and seen == self._turns:
            self._down_since = time.monotonic()
            self._turns += 1
            # numbered: two outages' lines differ (logs.py folds a repeated text)
            log.error("%s (outage %d: requests that need the database fail until it "
                      "answers; reconnecting)", error, self._turns // 2 + 1)

    @property
    def down(self) -> bool:
        """Whether the last call found the database unreachable."""
        return self._down_since is not None

    async def close(self) -> None:
        """Close the pool, waiting up to ``ACQUIRE_TIMEOUT`` for calls in progress."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), ACQUIRE_TIMEOUT)
            except asyncio.TimeoutError:
                pool.terminate()

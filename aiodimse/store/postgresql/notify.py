"""Waking the deliverers of every node: ``LISTEN``/``NOTIFY`` on one channel.

A write that makes work for any node (a report queued, leases given up) sends
``pg_notify(CHANNEL, <this store's id>)`` in its transaction, so it is heard only
once committed. Each store listens on one connection of its own while someone
watches; a notice from another store calls every watcher's ``wake`` (its own are
skipped: its deliverer was told in process). The connection is watched: lost, it
is made again after a backoff, and every watcher is woken then (notices sent
meanwhile were missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from .connection import CONNECT_TIMEOUT, DB_ERRORS

__all__ = ["CHANNEL", "Listener"]

log = logging.getLogger("aiodimse.store")

CHANNEL = "aiodimse_deliveries"
_CHECK_EVERY = 30.0  # s: a quiet connection is checked this often (a silent partition)
_BACKOFF_MAX = 30.0


class Listener:
    def __init__(self, dsn: str, me: str) -> None:
        self.dsn, self.me = dsn, me
        self.wakes: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, wake: Callable[[], None]) -> None:
        self.wakes.append(wake)
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="aiodimse-pg-listen")

    async def remove(self, wake: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self.wakes.remove(wake)
        if not self.wakes:
            await self.close()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _wake_all(self) -> None:
        for wake in list(self.wakes):
            wake()

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload != self.me:
            self._wake_all()

    async def _listen(self) -> None:
        backoff = 1.0
        first = True
        while True:
            lost = asyncio.Event()
            conn: Any = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT)
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._heard)
                if not first:
                    self._wake_all()  # what was sent while we were away
                first, backoff = False, 1.0
                while not lost.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(lost.wait(), _CHECK_EVERY)
                    if not lost.is_set():
                        await conn.execute("SELECT 1", timeout=CONNECT_TIMEOUT)
            except DB_ERRORS as exc:
                log.debug("listening for queued reports: %s; again in %.0f s", exc, backoff)
            finally:
                if conn is not None:
                    conn.terminate()
            first = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

"""Deleting COMPLETED and CANCELED workitems once kept long enough (``[ups]`` in
serve's TOML: ``keep_final``, ``purge_interval``).

PS3.4 CC.2.1.3 lets the SCP delete a workitem in a final state, but not while a
subscriber holds a deletion lock on it; the store's ``ups_purge`` judges both in
one transaction, so a lock taken meanwhile is honoured. A round deletes in batches
of ``batch`` (one short transaction each, other requests run between them) and at
most ``batches`` of them: what is left waits for the next round, so a backlog never
holds the store for long. ``keep_final`` 0 keeps every workitem (the default).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from ...store.interface import StoreError, UPSRetention
from .records import log

__all__ = ["Retention", "purge", "Purger"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """How long final workitems are kept (seconds since their last change; 0:
    forever) and how often, and how much at a time, the older ones are deleted."""

    keep_final: float = 0.0
    interval: float = 3600.0
    batch: int = 500
    batches: int = 20

    def __post_init__(self) -> None:
        if self.keep_final < 0 or self.interval <= 0 or self.batch < 1 or self.batches < 1:
            raise ValueError(f"unusable UPS retention {self!r}")


async def purge(store: UPSRetention, retention: Retention, now: float) -> int:
    """One bounded round: the final workitems last changed before ``now -
    keep_final`` and held by no deletion lock, deleted; how many."""
    if retention.keep_final <= 0:
        return 0
    before, total = now - retention.keep_final, 0
    for _ in range(retention.batches):
        gone = await store.ups_purge(before, retention.batch)
        total += gone
        if gone < retention.batch:
            break
    return total


class Purger:
    """Runs ``purge`` every ``interval`` seconds in a task of its own."""

    def __init__(self, store: UPSRetention, retention: Retention) -> None:
        self.store, self.retention = store, retention
        self.purged = 0  # workitems deleted (a counter for logs)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.retention.keep_final > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                gone = await purge(self.store, self.retention, time.time())
            except StoreError as exc:  # the next round tries again
                log.warning("ups: final workitems not purged: %s", exc)
            else:
                self.purged += gone
                if gone:
                    log.info("ups: %d final workitems past their keeping deleted", gone)
            await asyncio.sleep(self.retention.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

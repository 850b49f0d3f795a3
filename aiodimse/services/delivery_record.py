"""Recording acknowledged reports as delivered, several in one store call.

Each report a destination acknowledged is handed to the ``Recorder``, which
records it (``mark_delivered_many``) together with the others acknowledged while
the previous call was running: a group commit, without a timer. So a mark waits
at most for the one call in progress (plus its own), and costs a round trip per
batch, not per report. Until its mark is recorded an item stays in the
deliverer's ``held`` set (no claim of ours takes it again, so it is not sent
twice) and under its lease (no other worker or node takes it). What a crash
between the acknowledgement and the record re-sends is what it did before (the
queue is "at least once"); the window is that one call longer at most.

While the store is unreachable a batch is tried again, backing off up to
``RETRY_MAX`` s, until it answers or the recorder is stopped (its items' leases
are then given up by ``Deliverer.stop``, and they are sent again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..logs import get_logger
from ..store.interface import Delivery, DeliveryQueue, StoreError

__all__ = ["Recorder"]

log = get_logger("aiodimse.delivery")

BATCH_MAX = 256  # marks per store call
RETRY_FIRST, RETRY_MAX = 0.05, 1.0  # s: recording while the store is unreachable

Mark = tuple[Delivery, Mapping[str, Any] | None, "asyncio.Future[bool]"]


class Recorder:
    """``add`` an acknowledged item; ``recorded`` (called with the items and whether
    they were recorded) when its batch is done; ``drain`` waits for all."""

    def __init__(self, queue: DeliveryQueue,
                 recorded: Callable[[Sequence[Delivery], bool], None]) -> None:
        self.queue = queue
        self.recorded = recorded
        self._marks: list[Mark] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, item: Delivery, result: Mapping[str, Any] | None) -> asyncio.Future[bool]:
        """Record ``item`` delivered; the future says whether it was (False: a store
        failure other than unreachable, logged; the lease then lapses, it goes again)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._marks.append((item, result, done))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="aiodimse-delivery-record")
        return done

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for every mark; then stop trying the rest."""
        task = self._task
        if task is None:
            return
        await asyncio.wait([task], timeout=timeout)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        batch: list[Mark] = []
        try:
            while self._marks:
                batch, self._marks = self._marks[:BATCH_MAX], self._marks[BATCH_MAX:]
                ok = await self._record(batch)
                self._done(batch, ok)
                batch = []
        finally:
            self._task = None
            rest, self._marks = batch + self._marks, []
            if rest:  # cancelled (stop): not recorded
                self._done(rest, False)

    def _done(self, batch: Sequence[Mark], ok: bool) -> None:
        self.recorded([item for item, _, _ in batch], ok)
        for _, _, done in batch:
            if not done.done():
                done.set_result(ok)

    async def _record(self, batch: Sequence[Mark]) -> bool:
        marks = [(item.id, result) for item, result, _ in batch]
        delay = RETRY_FIRST
        while True:
            try:
                await self.queue.mark_delivered_many(marks, time.time())
                return True
            except StoreError as exc:
                if not exc.unavailable:
                    log.error("%d reports acknowledged, not recorded (sent again when "
                              "their lease ends): %s", len(marks), exc)
                    return False
                log.debug("%d reports acknowledged, not yet recorded: %s; again in %.2f s",
                          len(marks), exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

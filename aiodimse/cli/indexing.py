"""``serve``'s instance index of ``--index-dir``: scanned in the background once the
server listens, then rescanned every ``rescan_interval`` seconds.

The start-up scan logs its progress at INFO (at most every ``PROGRESS_EVERY`` s) and
a summary; files indexed before and unchanged (path, size, mtime) are not read
again, so a restart or a rescan costs a ``stat`` per file. A scan that fails is
logged and serving goes on (a rescan tries again).

The rule for Storage Commitment while the start-up scan runs (docs/cli.md):
requests are accepted and recorded at once, but no report is sent until the scan
is done, so an instance the scanner has not reached yet is never reported as
failed. The store holds the state (``set_index_complete``), so every worker
(``--workers``: only the supervisor scans) waits for the same scan; ``scan_hold``
is the deliverers' side, bounded by the report deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from ..logs import get_logger
from ..store import Store, StoreError
from ..store.index import ScanReport, index_paths
from ..store.interface import InstanceIndex

__all__ = ["PROGRESS_EVERY", "Indexer", "scan_hold"]

log = get_logger("aiodimse.serve")

PROGRESS_EVERY = 5.0  # seconds between the start-up scan's progress lines


class _Progress:
    """``index_paths``'s progress callback: one INFO line per ``every`` s at most."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.next = time.monotonic() + every

    def __call__(self, report: ScanReport) -> None:
        now = time.monotonic()
        if now >= self.next:
            self.next = now + self.every
            log.info("indexing: %d files seen, %d indexed, %d unchanged, %d skipped",
                     report.files, report.indexed, report.unchanged, report.skipped_count)


class Indexer:
    """The start-up scan of ``dirs``, then a rescan every ``interval`` s (0: none).

    ``on_complete`` is called when the start-up scan is over (done or failed), after
    the store was told (``set_index_complete(True)``).
    """

    def __init__(self, store: Store, dirs: Sequence[Path], interval: float, *,
                 data: Path, on_complete: Callable[[], None] | None = None,
                 progress_every: float | None = None) -> None:
        self.store, self.dirs, self.interval = store, tuple(dirs), interval
        self.data, self.on_complete = data, on_complete
        self.progress_every = PROGRESS_EVERY if progress_every is None else progress_every
        self.where = ", ".join(str(p) for p in self.dirs)

    async def run(self) -> None:
        for path in self.dirs:
            if not path.exists():
                log.warning("index directory %s does not exist: nothing indexed from it "
                            "(it is looked at again every rescan; or: aiodimse index "
                            "--data %s PATH)", path, self.data)
        log.info("indexing %s in the background; commitment reports wait until it is "
                 "done", self.where)
        await self._scan(start=True)
        try:
            await self.store.set_index_complete(True)
        except StoreError as exc:  # the deliverers' hold ends at its bound
            log.error("could not record the end of the index scan: %s", exc)
        if self.on_complete is not None:
            self.on_complete()
        while self.interval:
            await asyncio.sleep(self.interval)
            await self._scan(start=False)

    async def _scan(self, *, start: bool) -> None:
        """One scan; its failure is logged, not raised (serving goes on)."""
        report = ScanReport(quiet=not start)
        began = time.monotonic()
        progress = _Progress(self.progress_every) if start else None
        try:
            await index_paths(self.store, self.dirs, time.time(), report=report,
                              progress=progress)
        except Exception as exc:
            log.error("index scan of %s failed after %d files: %s: %s", self.where,
                      report.files, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            return
        took = time.monotonic() - began
        if start:
            log.info("index scan done in %.1f s: %s (%d files under %s)", took,
                     report.summary(), report.files, self.where)
        elif report.indexed:
            log.info("rescan: %s under %s", report.summary(), self.where)
        else:
            log.debug("rescan in %.1f s: %s", took, report.summary())


def scan_hold(index: InstanceIndex, bound: float) -> Callable[[], Awaitable[bool]]:
    """For ``Deliverer.hold``: True while the start-up scan runs (the store says the
    index is not complete), for at most ``bound`` s from the first question."""
    until: float | None = None

    async def hold() -> bool:
        nonlocal until
        now = time.monotonic()
        if until is None:
            until = now + bound
        if now >= until:
            log.warning("the index scan is not done after %.0f s: commitment reports "
                        "go out now", bound)
            return False
        return not await index.index_complete()

    return hold

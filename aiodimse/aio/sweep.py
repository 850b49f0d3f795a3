"""One timer for the upper-layer deadlines of many connections (a server's).

A connection's own ``call_at`` timer costs a timer object, its cancellation and the
loop's bookkeeping of both for every association; a server accepting thousands per
second pays that for timers that almost never fire (ARTIM runs from the connection
to the A-ASSOCIATE-RQ, and from the A-RELEASE-RP to the peer's close). The sweep
checks the connections that have a deadline every ``period`` seconds instead, so a
deadline is acted on between 0 and ``period`` seconds after it passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

__all__ = ["DeadlineSweep"]


class _Timed(Protocol):
    def check_deadline(self, now: float) -> bool:
        """Act on the deadline if it has passed; whether one is still pending."""


class DeadlineSweep:
    """Checks the watched connections' deadlines every ``period`` seconds."""

    __slots__ = ("_clock", "_loop", "_timer", "_watched", "period")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, period: float, clock: Callable[[], float]
    ) -> None:
        if not period > 0:
            raise ValueError(f"the sweep period must be positive: {period}")
        self._loop = loop
        self._clock = clock
        self.period = period
        self._watched: set[_Timed] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, conn: _Timed) -> None:
        """``conn`` has a deadline now: check it from the next sweep on."""
        self._watched.add(conn)
        if self._timer is None:
            self._timer = self._loop.call_later(self.period, self._sweep)

    def forget(self, conn: _Timed) -> None:
        """``conn`` has closed."""
        self._watched.discard(conn)

    def close(self) -> None:
        """Stop sweeping (the server and its connections have closed).

        Not final: a later ``watch`` starts the sweep again.
        """
        self._watched.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def watched(self) -> int:
        """How many connections are checked at the next sweep."""
        return len(self._watched)

    def _sweep(self) -> None:
        self._timer = None
        now = self._clock()
        try:
            for conn in list(self._watched):  # a check may watch or forget connections
                try:
                    pending = conn.check_deadline(now)
                except Exception as exc:  # one connection's failure must not stop the rest
                    self._loop.call_exception_handler(
                        {"message": "upper-layer deadline check failed", "exception": exc}
                    )
                    pending = False
                if not pending:
                    self._watched.discard(conn)
        finally:
            if self._watched and self._timer is None:
                self._timer = self._loop.call_later(self.period, self._sweep)

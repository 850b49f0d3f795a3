"""Idleness of one association: ``wait_idle`` and the network timeout.

``wait_idle`` waiters are woken once no request is in flight either way (or the
association ended). PS3.8 leaves the network timeout to us: an association whose
peer went silent with no request of ours or theirs outstanding is given up. A
server sweeps its associations (``check``); a requestor's association has a timer
of its own here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from ..association_log import log

__all__ = ["IdleWatch", "Watched"]


class _Receiving(Protocol):
    """The protocol's clock time of the last bytes received."""

    @property
    def received_at(self) -> float: ...


class Watched(Protocol):
    """What the idle watch asks of its association."""

    @property
    def proto(self) -> _Receiving | None: ...

    @property
    def in_flight(self) -> int: ...

    @property
    def is_alive(self) -> bool: ...

    def abort(self, *, source: int = 0, reason: int = 0) -> None: ...


class IdleWatch:
    """The ``wait_idle`` waiters and the last activity of one association (module doc)."""

    __slots__ = ("clock", "last_activity", "loop", "owner", "timer", "waiters")

    def __init__(self, owner: Watched, loop: asyncio.AbstractEventLoop,
                 clock: Callable[[], float],
                 waiters: list[asyncio.Future[None]] | None = None, *,
                 since: float | None = None) -> None:
        """``waiters``: the list to keep them in (the association's); ``since``: the
        last activity before the protocol's ``received_at`` (None: now)."""
        self.owner = owner
        self.loop = loop
        self.clock = clock
        self.waiters: list[asyncio.Future[None]] = [] if waiters is None else waiters
        self.timer: asyncio.TimerHandle | None = None
        self.last_activity = clock() if since is None else since

    async def wait(self) -> None:
        """Wait until no request is in flight either way (or the association ended)."""
        owner = self.owner
        if not owner.in_flight or not owner.is_alive:
            return
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        await waiter

    def check_waiters(self) -> None:
        """Wake the waiters if nothing is in flight now."""
        if self.waiters and not self.owner.in_flight:
            self.wake()

    def wake(self) -> None:
        """Wake every waiter. The list stays the same object: the association and
        serving.py hold it."""
        waiters = self.waiters
        if not waiters:
            return
        woken = waiters.copy()
        waiters.clear()
        for w in woken:
            if not w.done():
                w.set_result(None)

    def start_timer(self, timeout: float | None) -> None:
        """A requestor's network timeout: a timer of its own (a server sweeps instead)."""
        if timeout is not None and timeout > 0:
            self.timer = self.loop.call_at(self.last_activity + timeout, self._on_timer,
                                           timeout)

    def _on_timer(self, timeout: float) -> None:
        self.timer = None
        if not self.owner.is_alive:
            return
        now = self.clock()
        if not self.check(now, timeout):
            due = self.last_activity + timeout
            self.timer = self.loop.call_at(max(due, now + timeout / 8), self._on_timer, timeout)

    def check(self, now: float, timeout: float) -> bool:
        """Abort if nothing came in for ``timeout`` and nothing is in flight; True if so."""
        owner = self.owner
        proto = owner.proto
        if proto is not None and proto.received_at > self.last_activity:
            self.last_activity = proto.received_at  # what came in since the last check
        if now - self.last_activity < timeout or owner.in_flight or not owner.is_alive:
            return False
        log.info("no activity for %ss: aborting the association", timeout)
        owner.abort(source=2, reason=0)
        return True

    def stop(self) -> None:
        """The association ended: no timer, every waiter woken, and the association let
        go (no reference cycle: an ended association is freed by reference counting)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.wake()
        self.owner = _ENDED


class _Ended:
    """What an idle watch sees of its association once that ended."""

    proto = None
    in_flight = 0
    is_alive = False

    def abort(self, *, source: int = 0, reason: int = 0) -> None:
        """Nothing to abort."""


_ENDED = _Ended()

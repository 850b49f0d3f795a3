"""How an association ends, and what waits for its set-up and its end.

A mixin of ``Association`` (as scu.py's ``ServiceCalls`` is): the ACSE state
(established, released, aborted, rejected), the set-up's outcome and the end,
each with a future made only for a caller that waits (a server's associations
have none), release (answered once the DIMSE session has no request running or
queued), abort, and why requests fail once it has ended. The association keeps
the data transfer and its own teardown (``_finish``, which marks the end here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from . import evt
from .association_log import log
from .errors import AiodimseError, AssociationAbortedError, AssociationError
from .logs import peer_of
from .notifications import notify
from .ul.events import Aborted, ReleaseConfirmation, ReleaseIndication, ULEvent
from .ul.states import STA12

if TYPE_CHECKING:
    from .aio.protocol import DULProtocol
    from .dimse.session import DIMSESession
    from .handlers import Handlers

__all__ = ["Lifecycle"]


class Lifecycle:
    """Set-up outcome, release, abort and the end of one association (module doc)."""

    __slots__ = ("_end_reason", "_ended", "_established", "_finished", "_settled",
                 "_setup_error", "is_aborted", "is_established", "is_rejected",
                 "is_released")

    if TYPE_CHECKING:  # provided by Association
        is_requestor: bool
        handlers: Handlers
        loop: asyncio.AbstractEventLoop
        _session: DIMSESession | None

        @property
        def proto(self) -> DULProtocol | None: ...

        def track(self, task: asyncio.Task[Any]) -> None: ...

        def _fail_outstanding(self) -> None: ...

    def __init__(self) -> None:
        self.is_established = False
        self.is_released = False
        self.is_aborted = False
        self.is_rejected = False
        # The set-up's outcome (None: accepted) once ``_settled``, and the future of
        # whoever waits for it; the end, and the future of whoever waits for that.
        self._settled = False
        self._setup_error: BaseException | None = None
        self._established: asyncio.Future[None] | None = None
        self._finished = False
        self._ended: asyncio.Future[None] | None = None
        self._end_reason: AssociationError | None = None

    # -- the set-up's outcome -----------------------------------------------------------

    def _settle(self, err: BaseException | None) -> None:
        """The set-up's outcome (None: accepted), told to a waiter if one waits."""
        self._settled = True
        if self._setup_error is None:
            self._setup_error = err
        fut = self._established
        if fut is not None and not fut.done():
            if err is None:
                fut.set_result(None)
            else:
                fut.set_exception(err)

    async def wait_established(self) -> None:
        """Requestor: wait for the peer's answer; raise if rejected or aborted."""
        if not self._settled:
            if self._established is None:
                self._established = self.loop.create_future()
            await self._established
        elif self._setup_error is not None:
            raise self._setup_error

    def rejected(self, err: AssociationError) -> None:
        """The set-up ended in an A-ASSOCIATE-RJ, sent or received (establishment.py)."""
        self.is_rejected = True
        self._end_reason = err
        self._settle(err)
        if self.handlers.notifies:
            notify(self, evt.EVT_REJECTED)

    # -- release ------------------------------------------------------------------------

    async def release(self) -> None:
        """Release the association and wait until it has ended (ACSE timeout bound)."""
        if self._finished:
            return
        if self.is_established and self.proto is not None:
            self.proto.request_release()
        await asyncio.shield(self._end_future())

    def _on_release_rq(self, ev: ReleaseIndication) -> None:
        if ev.collision:
            if self.is_requestor:  # PS3.8 7.2.2: the requestor answers first
                self._respond_release()
            return  # the acceptor answers after the requestor's A-RELEASE-RP
        # answered once the running and queued requests are (session: ReleaseReady)
        if self._session is None or self._session.receive_release():
            self._respond_release()

    def _respond_release(self) -> None:
        if self.proto is not None and self.proto.respond_release():
            self._mark_released()

    def _on_release_rp(self, ev: ReleaseConfirmation) -> None:
        if self.proto is not None and self.proto.state is STA12:  # collision, acceptor
            self._respond_release()
        self._mark_released()

    def _mark_released(self) -> None:
        if not self.is_released:
            self.is_released = True
            self.is_established = False
            if self.handlers.notifies:
                notify(self, evt.EVT_RELEASED)
            self._fail_outstanding()

    # -- abort ----------------------------------------------------------------------------

    def abort(self, *, source: int = 0, reason: int = 0) -> None:
        """Abort at once: send A-ABORT and close; outstanding requests fail."""
        if self.proto is not None:
            self.proto.abort(source=source, reason=reason)
        self._mark_aborted("association aborted (local)", source, reason)

    def _on_aborted(self, ev: Aborted) -> None:
        self._mark_aborted(f"association aborted ({ev.cause})", ev.source, ev.reason)

    def _mark_aborted(self, why: str, source: int | None, reason: int | None) -> None:
        if self.is_aborted or self.is_released:
            return
        self.is_aborted = True
        was_established = self.is_established
        self.is_established = False
        err = AssociationAbortedError(why, source=source, reason=reason)
        if self._end_reason is None:
            self._end_reason = err
        if not self._settled:
            self._settle(self._end_reason)
        self._fail_outstanding()
        if (was_established or not self.is_rejected) and self.handlers.notifies:
            notify(self, evt.EVT_ABORTED)

    def _protocol_abort(self, exc: AiodimseError) -> None:
        log.warning("protocol error from %s: %s", peer_of(self), exc)
        source = getattr(exc, "abort_source", 2)
        reason = getattr(exc, "abort_reason", 0)
        self.abort(source=source, reason=reason)

    # -- the end --------------------------------------------------------------------------

    def end_error(self) -> AssociationError:
        """Why requests fail now; made on first use (a clean release usually needs none)."""
        if self._end_reason is None:
            why = "released" if self.is_released else "has ended"
            self._end_reason = AssociationAbortedError(f"the association {why}")
        return self._end_reason

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._end_future())

    def on_end(self, callback: Any) -> None:
        """Call ``callback(assoc)`` once the connection has closed."""
        self._end_future().add_done_callback(lambda _f: callback(self))

    def _end_future(self) -> asyncio.Future[None]:
        """The future done at the end, made for the first to wait (done if ended)."""
        fut = self._ended
        if fut is None:
            fut = self._ended = self.loop.create_future()
            if self._finished:
                fut.set_result(None)
        return fut

    @property
    def is_alive(self) -> bool:
        return not self._finished

    # The upper layer's release and abort events, each with its method
    # (``Association.ul_events`` dispatches by type).
    ENDING_EVENTS: ClassVar[dict[type[ULEvent], Callable[[Any, Any], None]]] = {
        ReleaseIndication: _on_release_rq,
        ReleaseConfirmation: _on_release_rp,
        Aborted: _on_aborted,
    }

"""One ``asyncio.Protocol`` per connection, the only owner of the upper-layer core.

The protocol owns no DICOM logic: it passes bytes in, writes what the core wants
sent (one write per call), keeps a single ``call_at`` timer on the core's next
deadline and hands the core's events to its user (the association). Whatever the
user asks of the upper layer (accept, reject, send P-DATA, release, abort) it asks
the protocol, which calls the core and then transmits (aioquic's pattern): no other
object touches the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from ..errors import LocalProtocolError
from ..logs import get_logger
from ..ul.events import CloseTransport, DataIndication, ULEvent
from ..ul.machine import UpperLayer
from ..ul.states import STA1, STA3, STA13, State
from ..wire.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ, Fragment
from .prompt import PromptFuture, run_wakes
from .sweep import DeadlineSweep

__all__ = ["DULProtocol", "LoopTraits", "ULUser", "loop_clock", "loop_traits"]

log = get_logger("aiodimse.transport")


class LoopTraits(NamedTuple):
    """What a connection needs to know of its event loop's class, worked out once."""

    monotonic: bool  # loop.time() is time.monotonic(): call that (a call less)
    nodelay: bool  # its TCP transports set TCP_NODELAY already (asyncio's, uvloop's)
    prompt: bool  # asyncio's own loop: PromptFuture wakes a waiter an iteration sooner


_TRAITS: dict[type, LoopTraits] = {}


def loop_traits(loop: asyncio.AbstractEventLoop) -> LoopTraits:
    """``loop``'s traits, remembered per class (one dict lookup per connection)."""
    kind = type(loop)
    found = _TRAITS.get(kind)
    if found is None:
        asyncio_own = isinstance(loop, asyncio.BaseEventLoop)
        found = _TRAITS[kind] = LoopTraits(
            monotonic=kind.time is asyncio.BaseEventLoop.time,
            nodelay=asyncio_own or kind.__module__.startswith("uvloop"),
            prompt=asyncio_own,
        )
    return found


def loop_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """``loop.time``, or the C function it calls on asyncio's own loops (a call less)."""
    return time.monotonic if loop_traits(loop).monotonic else loop.time


class ULUser(Protocol):
    """What the adapter reports to (the association)."""

    def connection_made(self, proto: DULProtocol) -> None: ...

    def ul_events(self, events: Sequence[ULEvent]) -> None: ...

    def ul_fragments(self, fragments: tuple[Fragment, ...], now: float) -> None:
        """The data path: a chunk whose only event is P-DATA, as its PDVs (``now``: when
        it came, on ``clock``)."""

    def connection_lost(self, exc: Exception | None) -> None: ...


class DULProtocol(asyncio.Protocol):
    """Transport adapter for one association."""

    __slots__ = (
        "_deadline",
        "_deadline_sweep",
        "_depth",
        "_drain_waiter",
        "_nodelay",
        "_prompt",
        "_timer",
        "_timer_at",
        "clock",
        "closed",
        "loop",
        "peername",
        "received_at",
        "receiving",
        "transport",
        "ul",
        "user",
        "woken",
        "write_paused",
    )

    def __init__(
        self,
        ul: UpperLayer,
        user: ULUser,
        loop: asyncio.AbstractEventLoop,
        sweep: DeadlineSweep | None = None,
        *,
        traits: LoopTraits | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``traits`` and ``clock``, ``loop``'s, are passed by a server (worked out once)."""
        if traits is None:
            traits = loop_traits(loop)
        self.ul = ul
        self.user = user
        self.loop = loop
        self.clock = clock if clock is not None else loop_clock(loop)
        self.transport: asyncio.Transport | None = None
        self.peername: tuple[str, int] = ("", 0)
        self._timer: asyncio.TimerHandle | None = None
        self._deadline_sweep = sweep  # checks the core's deadline instead of _timer (a server's)
        self._deadline: float | None = None  # the core's, as last seen
        self._timer_at = 0.0  # when _timer fires
        self.write_paused = False  # the transport is above its high-water mark (read-only)
        self._drain_waiter: asyncio.Future[None] | None = None
        self.closed = False  # the connection is gone (read-only for others)
        self.receiving = False  # inside data_received, which writes at its end
        self._depth = 0  # data_received calls under way (a transport may nest them)
        self.received_at = 0.0  # loop time of the last data received
        self.woken: list[PromptFuture[Any]] | None = None  # their waiters run at its end
        # asyncio's own loop wakes a waiter one iteration late (an epoll_wait more per
        # request); uvloop runs it in the same iteration, where a C future is cheaper.
        self._prompt = traits.prompt
        self._nodelay = traits.nodelay

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # (no cast call per connection)
        if not self._nodelay:
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):  # platform specific
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peername = (str(peer[0]), int(peer[1]))
        now = self.clock()
        if self.ul.is_requestor:
            self.ul.transport_connected(now)  # queues the A-ASSOCIATE-RQ
        else:
            self.ul.transport_indication(now)
        self.user.connection_made(self)
        self.transmit()

    def data_received(self, data: bytes) -> None:
        # What the events make the user send (responses of handlers that finish at
        # once, A-ASSOCIATE-AC, A-RELEASE-RP) is queued and written in one call at the
        # end: one write, one timer update, however many messages the chunk held.
        # Callers awaiting the responses it held resume before that write (prompt.py).
        self.receiving = True
        self.received_at = now = self.clock()
        self._depth += 1
        try:
            try:
                # the data path (no close can follow): the usual chunk without an
                # event, else one P-DATA indication, else the events in general
                fragments = self.ul.receive_pdata(data, now)
                if fragments is not None:
                    self.user.ul_fragments(fragments, now)
                else:
                    events = self.ul.receive_data(data, now)
                    if len(events) == 1 and type(events[0]) is DataIndication:
                        self.user.ul_fragments(events[0].fragments, now)
                    elif events:
                        self.dispatch(events)
            finally:
                try:
                    if self.woken:
                        self._run_woken()
                finally:
                    self.receiving = False
            self.transmit()
        finally:
            self._depth -= 1

    def _run_woken(self) -> None:
        """Resume the callers whose responses this data_received held (prompt.py).

        Still receiving: what they send joins our write. Nested in our own write (a
        transport answering inside it), they are scheduled instead, or a sequential
        caller would recurse once per request; so is what a KeyboardInterrupt in one
        of them leaves queued.
        """
        nested = self._depth > 1
        try:
            while self.woken:
                woken, self.woken = self.woken, None
                run_wakes(self.loop, woken, nested=nested)
        finally:
            if self.woken:
                woken, self.woken = self.woken, None
                run_wakes(self.loop, woken, nested=True)

    def eof_received(self) -> bool:
        return False  # close our side too: DICOM has no half-closed state

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._deadline_sweep is not None:
            self._deadline_sweep.forget(self)
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        events = self.ul.connection_closed(self.clock())
        if events:
            self.user.ul_events(events)
        self.user.connection_lost(exc)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the association: call the core, then transmit ---------------------

    @property
    def state(self) -> State:
        """The upper layer's state (PS3.8 Sta1-Sta13)."""
        return self.ul.state

    def request_association(self, rq: AAssociateRQ) -> None:
        """Requestor, before connecting: the A-ASSOCIATE-RQ to send once connected."""
        self.ul.request_association(rq, self.clock())

    def accept(self, ac: AAssociateAC, encoded: bytes | None = None) -> bool:
        """Send the A-ASSOCIATE-AC; False (nothing sent) unless the request awaits one."""
        if self.closed or self.ul.state is not STA3:
            return False
        if self.receiving:  # data_received's time, and its write at the end
            self.ul.accept(ac, self.received_at, encoded=encoded)
        else:
            self.ul.accept(ac, self.clock(), encoded=encoded)
            self.transmit()
        return True

    def reject(self, rj: AAssociateRJ) -> bool:
        """Send the A-ASSOCIATE-RJ; False (nothing sent) unless the request awaits one."""
        if self.closed or self.ul.state is not STA3:
            return False
        self.ul.reject(rj, self.clock())
        self.transmit()
        return True

    def send_pdata(self, pdus: bytes) -> None:
        """Send P-DATA-TF PDUs (raises ``LocalProtocolError`` when not allowed now).

        Inside ``data_received`` the write waits for its end, with the rest.
        """
        if self.closed:
            raise LocalProtocolError("the connection is closed")
        self.ul.send_pdata(pdus)
        if not self.receiving:
            self.transmit()

    def request_release(self) -> None:
        """Send an A-RELEASE-RQ, unless releasing already."""
        if self.closed:
            return
        with contextlib.suppress(LocalProtocolError):
            self.ul.request_release(self.clock())
        self.transmit()

    def respond_release(self) -> bool:
        """Send the A-RELEASE-RP; whether the association is released now."""
        if self.closed:
            return False
        receiving = self.receiving  # then data_received's time, and its write at the end
        try:
            self.ul.respond_release(self.received_at if receiving else self.clock())
        except LocalProtocolError:
            return False
        if not receiving:
            self.transmit()
        return self.ul.state in (STA13, STA1)

    def abort(self, *, source: int = 0, reason: int = 0) -> None:
        """Send an A-ABORT (unless aborted already) and close."""
        if self.closed:
            return
        with contextlib.suppress(LocalProtocolError):
            self.ul.abort(self.clock(), source=source, reason=reason)
        self.close()

    def transmit(self) -> None:
        """Write whatever the core has queued, in one call, and re-arm the timer.

        Inside ``data_received`` this waits for its end (which transmits).
        """
        if self.receiving:
            return
        ul = self.ul
        out = ul.data_to_send()
        if out and self.transport is not None and not self.closed:
            self.transport.write(out)
        if ul.next_deadline() != self._deadline:
            self._arm_timer()

    def response_future(self) -> asyncio.Future[Any] | PromptFuture[Any]:
        """The future a request's caller awaits its response on (prompt where it helps)."""
        return PromptFuture(self.loop, self) if self._prompt else self.loop.create_future()

    def dispatch(self, events: Sequence[ULEvent]) -> None:
        """Hand events to the user, then act on a close request."""
        self.user.ul_events(events)
        for ev in events:
            if type(ev) is CloseTransport:
                self.close()

    def hold_reading(self, hold: bool) -> None:
        """Stop (``hold``) or restart reading the socket: the association's back pressure."""
        transport = self.transport
        if transport is None or self.closed:
            return
        if hold:
            transport.pause_reading()
        else:
            transport.resume_reading()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if not self.write_paused or self.closed:
            return
        if self._drain_waiter is None or self._drain_waiter.done():
            self._drain_waiter = self.loop.create_future()
        await self._drain_waiter

    def close(self) -> None:
        """Write what is pending and close the transport."""
        if self.transport is not None and not self.closed:
            out = self.ul.data_to_send()
            if out:
                self.transport.write(out)
            self.transport.close()

    # -- timer --------------------------------------------------------------------

    def _arm_timer(self) -> None:
        """Follow the core's deadline with one ``call_at`` timer, lazily, or the sweep.

        A timer due no later than the new deadline is kept (when it fires early it
        re-arms), and a stopped deadline leaves the timer to find nothing due: the
        ARTIM that runs from connection to A-ASSOCIATE-RQ, stopped and started again
        around each association, costs no cancel and no new timer each time.
        """
        deadline = self._deadline = self.ul.next_deadline()
        if deadline is None or self.closed:
            return
        if self._deadline_sweep is not None:
            self._deadline_sweep.watch(self)
            return
        timer = self._timer
        if timer is not None:
            if self._timer_at <= deadline:
                return
            timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self.closed:
            return
        now = self.loop.time()
        if now < deadline:  # a later deadline than this timer was set for
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._on_timer)
            return
        self._expire(now)

    def check_deadline(self, now: float) -> bool:
        """The sweep's check: act on a passed deadline; whether one is still pending."""
        deadline = self._deadline
        if deadline is not None and now >= deadline and not self.closed:
            self._expire(now)
        return self._deadline is not None and not self.closed

    def _expire(self, now: float) -> None:
        self._deadline = None
        events = self.ul.handle_timer(now)
        self.transmit()
        if events:
            self.dispatch(events)

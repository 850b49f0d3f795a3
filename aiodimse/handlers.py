"""Binding handlers to event types and calling them.

``async def`` handlers are awaited on the event loop; plain functions run on the
AE's own handler threads (:class:`HandlerThreads`, ``AE.handler_threads`` of them),
so that blocking pynetdicom-style handlers keep working without taking the loop's
default executor (which asyncio and other libraries use) and without holding up
the process when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import AiodimseError
from .evt import EVT_USER_ID, EventType
from .logs import get_logger

__all__ = ["HandlerSpec", "Binding", "BoundHandler", "HandlerConflictError", "HandlerExit",
           "HandlerThreads", "Handlers", "call_handler"]

log = get_logger("aiodimse.handlers")


@dataclass(frozen=True, slots=True)
class Binding:
    """A handler for ``event``, for requests on ``abstract_syntax``'s contexts only.

    ``abstract_syntax`` is the presentation context's abstract syntax the request
    arrived on (not the SOP class named in the command: UPS sends the Push SOP
    class on Pull, Watch and Event contexts); None binds for every abstract syntax,
    like pynetdicom's ``(event, handler)``. Accepted wherever ``evt_handlers`` is.
    """

    event: EventType
    handler: Callable[..., Any]
    abstract_syntax: str | None = None
    args: Sequence[Any] = ()


HandlerSpec = (
    tuple[EventType, Callable[..., Any]]
    | tuple[EventType, Callable[..., Any], Sequence[Any]]
    | Binding
)


class HandlerConflictError(AiodimseError, ValueError):
    """A second intervention handler bound for the same event and abstract syntax.

    One request has one answer: two services claiming the same SOP class and event
    is a composition mistake, to be found when composing, not by a silent
    replacement that disables one of them.
    """

    def __init__(self, event: EventType, abstract_syntax: str | None,
                 detail: str | None = None) -> None:
        self.event = event
        self.abstract_syntax = abstract_syntax
        where = ("every abstract syntax" if abstract_syntax is None
                 else f"SOP class {abstract_syntax}")
        super().__init__(f"{event.name} already has a handler for {where}: " + (
            detail or "unbind it first, or bind on the association to override it"))


@dataclass(frozen=True, slots=True)
class BoundHandler:
    """A handler with its extra arguments and whether it is a coroutine function."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    is_async: bool


def _is_async(func: Callable[..., Any]) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


class Handlers:
    """The handlers bound for an AE, a server or one association.

    An intervention event has at most one handler per key: the event with an
    abstract syntax, or the event alone (every abstract syntax). A request goes to
    the handler for its context's abstract syntax, else to the event-wide one.
    Binding a different handler for a key already bound raises
    :class:`HandlerConflictError` unless ``replace`` is set (an association's own
    bindings over its server's are an overlay, and replace). A notification event
    may have several handlers, event-wide only.
    """

    __slots__ = ("by_event", "by_syntax", "notifies", "wide")

    def __init__(self, specs: Iterable[HandlerSpec] | None = None) -> None:
        # Read it freely (the server reads it once per request); change it only
        # through bind() and unbind(). Event-wide bindings:
        self.by_event: dict[EventType, tuple[BoundHandler, ...]] = {}
        # The event-wide intervention handlers again, unwrapped: lookup()'s last step.
        self.wide: dict[EventType, BoundHandler] = {}
        # (event, abstract syntax) -> handler; empty unless something routes by SOP
        # class, and then the request path makes one more dict lookup.
        self.by_syntax: dict[tuple[EventType, str], BoundHandler] = {}
        # Whether any notification event has a handler: an association notifies six
        # times in its life, and usually nobody listens.
        self.notifies = False
        for spec in specs or ():
            if isinstance(spec, Binding):
                self.bind(spec.event, spec.handler, spec.args,
                          abstract_syntax=spec.abstract_syntax)
            elif len(spec) == 3:
                self.bind(spec[0], spec[1], spec[2])
            elif len(spec) == 2:
                self.bind(spec[0], spec[1])
            else:
                raise ValueError(f"a handler is (event, handler[, args]), not {spec!r}")

    def bind(
        self,
        event: EventType,
        handler: Callable[..., Any],
        args: Sequence[Any] | None = None,
        *,
        abstract_syntax: str | None = None,
        replace: bool = False,
    ) -> None:
        """Bind ``handler`` for ``event`` (on ``abstract_syntax``'s contexts only, if given).

        Binding the same handler again only changes its arguments.
        """
        if not isinstance(event, EventType):
            raise TypeError(f"not an event type: {event!r}")
        if not callable(handler):
            raise TypeError(f"handler is not callable: {handler!r}")
        bound = BoundHandler(handler, tuple(args or ()), _is_async(handler))
        if abstract_syntax is not None:
            if not event.is_intervention or event is EVT_USER_ID:
                raise ValueError(f"{event.name} is not a request on a presentation "
                                 f"context: it cannot be bound per abstract syntax")
            key = (event, str(abstract_syntax))
            old = self.by_syntax.get(key)
            if old is not None and not replace and old.func != handler:
                raise HandlerConflictError(event, key[1])
            self.by_syntax[key] = bound
        elif event.is_intervention:
            olds = self.by_event.get(event, ())
            if olds and not replace and olds[0].func != handler:
                raise HandlerConflictError(event, None)
            self.by_event[event] = (bound,)
            self.wide[event] = bound
        else:
            kept = tuple(b for b in self.by_event.get(event, ()) if b.func != handler)
            self.by_event[event] = (*kept, bound)
            self.notifies = True

    def unbind(self, event: EventType, handler: Callable[..., Any], *,
               abstract_syntax: str | None = None) -> None:
        """Remove ``handler`` from that key; nothing happens if it is not bound there."""
        if abstract_syntax is not None:
            key = (event, str(abstract_syntax))
            old = self.by_syntax.get(key)
            if old is not None and old.func == handler:
                del self.by_syntax[key]
            return
        kept = tuple(b for b in self.by_event.get(event, ()) if b.func != handler)
        if kept:
            self.by_event[event] = kept
        else:
            self.by_event.pop(event, None)
            self.wide.pop(event, None)
        self.notifies = any(e.is_notification for e in self.by_event)

    def lookup(self, event: EventType, abstract_syntax: str) -> BoundHandler | None:
        """The handler for a request of ``event`` on a context of ``abstract_syntax``."""
        if self.by_syntax:
            found = self.by_syntax.get((event, abstract_syntax))
            if found is not None:
                return found
        return self.wide.get(event)

    def get(self, event: EventType, abstract_syntax: str | None = None
            ) -> tuple[BoundHandler, ...]:
        """The handlers bound for exactly that key (no fallback)."""
        if abstract_syntax is None:
            return self.by_event.get(event, ())
        found = self.by_syntax.get((event, abstract_syntax))
        return () if found is None else (found,)

    def merged(self, other: Handlers | None) -> Handlers:
        """A copy with ``other``'s bindings applied on top (an overlay: they replace)."""
        out = Handlers()
        out.by_event = dict(self.by_event)
        out.by_syntax = dict(self.by_syntax)
        out.wide = dict(self.wide)
        out.notifies = self.notifies
        if other is not None:
            for event, bound in other.by_event.items():
                for b in bound:
                    out.bind(event, b.func, b.args, replace=True)
            for (event, syntax), b in other.by_syntax.items():
                out.bind(event, b.func, b.args, abstract_syntax=syntax, replace=True)
        return out

    def __bool__(self) -> bool:
        return bool(self.by_event or self.by_syntax)


async def call_handler(bound: BoundHandler, event: Any) -> Any:
    """Call a handler the right way for its kind and return what it returned."""
    if bound.is_async:
        return await bound.func(event, *bound.args)
    ae = getattr(getattr(event, "assoc", None), "ae", None)
    result = await handler_threads(ae).run(functools.partial(bound.func, event, *bound.args))
    if inspect.isawaitable(result):
        return await result
    return result


class HandlerExit(Exception):
    """A handler raised SystemExit or KeyboardInterrupt: a handler failure like any other.

    Carried as an ordinary exception (the original is its ``__cause__``) so that it
    reaches the association's error handling instead of stopping the event loop.
    """


_IDLE_EXIT = 10.0  # seconds an idle handler thread waits for work before it ends


class HandlerThreads:
    """The threads that run plain (sync) handlers: at most ``size``, made on demand.

    Daemon threads that nobody joins: a handler stuck for ever cannot keep the
    process from exiting, and the server's shutdown never waits for one (a thread
    cannot be stopped; its result is dropped). Calls beyond ``size`` wait in a queue
    until a thread is free (the handler time limit still runs for them). Idle
    threads end after a few seconds.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._queue: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any],
                                              Callable[[], Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._waiting = 0  # threads blocked in get(), exactly (changed under the lock)

    @property
    def threads(self) -> int:
        """Threads alive now (busy or idle)."""
        return self._threads

    def run(self, func: Callable[[], Any]) -> asyncio.Future[Any]:
        """Call ``func()`` on a handler thread; its result (or exception) as a future."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put((loop, fut, func))
        with self._lock:
            self._more_if_needed()
        return fut

    def _more_if_needed(self) -> None:
        """Start a thread if calls wait that no waiting thread will take (lock held).

        Checked after every put and after every get: whichever runs last sees both.
        """
        if self._queue.qsize() > self._waiting and self._threads < max(self.size, 1):
            self._threads += 1
            threading.Thread(target=self._work, name="aiodimse-handler", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._waiting += 1
            try:
                loop, fut, func = self._queue.get(timeout=_IDLE_EXIT)
            except queue.Empty:
                with self._lock:
                    self._waiting -= 1
                    if self._queue.empty():
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._waiting -= 1
                self._more_if_needed()
            if not fut.cancelled():  # (a racy read: at worst the call is made for nothing)
                self._call(loop, fut, func)

    @staticmethod
    def _call(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any],
              func: Callable[[], Any]) -> None:
        try:
            outcome: tuple[bool, Any] = (True, func())
        except (SystemExit, KeyboardInterrupt) as exc:
            error = HandlerExit(f"the handler raised {type(exc).__name__}{exc.args!r}")
            error.__cause__ = exc
            outcome = (False, error)
        except BaseException as exc:  # handed to the awaiting task
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(_settle, fut, outcome)


def _settle(fut: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if fut.done():  # cancelled: the handler's time limit or the association's end
        return
    ok, value = outcome
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


_pools: weakref.WeakKeyDictionary[Any, HandlerThreads] = weakref.WeakKeyDictionary()


_shared = HandlerThreads(32)  # for calls without an AE


def handler_threads(ae: Any) -> HandlerThreads:
    """The AE's handler threads (``ae.handler_threads`` of them at most)."""
    if ae is None:
        return _shared
    size = int(getattr(ae, "handler_threads", 32))
    pool = _pools.get(ae)
    if pool is None:
        pool = _pools[ae] = HandlerThreads(size)
    pool.size = size
    return pool

"""Binding handlers to event types and calling them.

``async def`` handlers are awaited on the event loop; plain functions run in the
loop's default executor so that blocking pynetdicom-style handlers keep working.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .evt import EventType

__all__ = ["HandlerSpec", "BoundHandler", "Handlers", "call_handler"]

log = logging.getLogger("aiodimse.handlers")

HandlerSpec = (
    tuple[EventType, Callable[..., Any]] | tuple[EventType, Callable[..., Any], Sequence[Any]]
)


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

    An intervention event has at most one handler (binding replaces it, as in
    pynetdicom); a notification event may have several.
    """

    __slots__ = ("by_event", "notifies")

    def __init__(self, specs: Iterable[HandlerSpec] | None = None) -> None:
        # Read it freely (the server reads it once per request); change it only
        # through bind() and unbind().
        self.by_event: dict[EventType, tuple[BoundHandler, ...]] = {}
        # Whether any notification event has a handler: an association notifies six
        # times in its life, and usually nobody listens.
        self.notifies = False
        for spec in specs or ():
            if len(spec) == 3:
                self.bind(spec[0], spec[1], spec[2])
            elif len(spec) == 2:
                self.bind(spec[0], spec[1])
            else:
                raise ValueError(f"a handler is (event, handler[, args]), not {spec!r}")

    def bind(
        self, event: EventType, handler: Callable[..., Any], args: Sequence[Any] | None = None
    ) -> None:
        if not isinstance(event, EventType):
            raise TypeError(f"not an event type: {event!r}")
        if not callable(handler):
            raise TypeError(f"handler is not callable: {handler!r}")
        bound = BoundHandler(handler, tuple(args or ()), _is_async(handler))
        if event.is_intervention:
            self.by_event[event] = (bound,)
        else:
            kept = tuple(b for b in self.by_event.get(event, ()) if b.func is not handler)
            self.by_event[event] = (*kept, bound)
            self.notifies = True

    def unbind(self, event: EventType, handler: Callable[..., Any]) -> None:
        kept = tuple(b for b in self.by_event.get(event, ()) if b.func is not handler)
        if kept:
            self.by_event[event] = kept
        else:
            self.by_event.pop(event, None)
        self.notifies = any(e.is_notification for e in self.by_event)

    def get(self, event: EventType) -> tuple[BoundHandler, ...]:
        return self.by_event.get(event, ())

    def merged(self, other: Handlers | None) -> Handlers:
        """A copy with ``other``'s bindings applied on top."""
        out = Handlers()
        out.by_event = dict(self.by_event)
        out.notifies = self.notifies
        if other is not None:
            for event, bound in other.by_event.items():
                for b in bound:
                    out.bind(event, b.func, b.args)
        return out

    def __bool__(self) -> bool:
        return bool(self.by_event)


async def call_handler(bound: BoundHandler, event: Any) -> Any:
    """Call a handler the right way for its kind and return what it returned."""
    if bound.is_async:
        return await bound.func(event, *bound.args)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(None, functools.partial(bound.func, event, *bound.args))
    if inspect.isawaitable(result):
        return await result
    return result

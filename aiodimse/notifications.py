"""Notification events (EVT_CONN_OPEN, EVT_ACCEPTED, EVT_RELEASED, ...) and the
tasks that run handlers beyond the callback that started them.

Each handler bound to a notification runs in a Task of its own; one that fails is
logged, never raised into the association that notified. Every such Task (and a
suspended request handler's, serving.py) is held until it ends, in its server's
set (the server cancels what is left when it stops) or, for a requestor's
association, in this module's: a task must never be left to the garbage collector
while it waits.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from .association_log import log_handler_failure
from .events import Event
from .handlers import BoundHandler, Handlers, call_handler

if TYPE_CHECKING:
    from . import evt

__all__ = ["Notifying", "hold_task", "notify"]

# Handler tasks of associations that have no server (requestors), held until they end.
_HANDLER_TASKS: set[asyncio.Task[Any]] = set()


def hold_task(task: asyncio.Task[Any], tasks: set[asyncio.Task[Any]] | None) -> None:
    """Hold ``task`` in ``tasks`` (a server's) or this module's set until it ends."""
    held = tasks if tasks is not None else _HANDLER_TASKS
    held.add(task)
    task.add_done_callback(held.discard)


class Notifying(Protocol):
    """What a notification asks of its association (also the events' ``assoc``)."""

    handlers: Handlers
    loop: asyncio.AbstractEventLoop

    def track(self, task: asyncio.Task[Any]) -> None: ...


def notify(assoc: Notifying, event_type: evt.EventType) -> None:
    """Run the handlers bound to ``event_type``, each in a tracked Task.

    The association calls it only if ``handlers.notifies``: nobody listens, as a
    rule, and six calls per association are 1 % of the set-up's cost (row 3).
    """
    handlers = assoc.handlers
    if not handlers.notifies:
        return
    bound = handlers.get(event_type)
    if not bound:
        return
    event = Event(assoc, event_type, extra={})
    for b in bound:
        assoc.track(assoc.loop.create_task(_run(b, event)))


async def _run(bound: BoundHandler, event: Event) -> None:
    try:
        await call_handler(bound, event)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        log_handler_failure(event.name, exc, event.assoc)

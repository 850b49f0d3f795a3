"""Which C-FIND/GET/MOVE requests a peer cancelled (``event.is_cancelled``).

The running requests of each association by Message ID, so that a C-CANCEL-RQ
finds its request (serving_query.py) and a handler can ask. Weak by association:
an entry goes with its association.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Running", "find", "is_cancelled", "table_of"]


class Running:
    """One request being served: whether it was cancelled, and how to interrupt the
    wait for its handler's next result (serving_query.py's ``_Source``)."""

    __slots__ = ("cancelled", "interrupt", "waker")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.cancelled = False
        self.waker: asyncio.Future[None] = loop.create_future()
        # set while the driver awaits an async generator itself: cancels that await
        self.interrupt: Callable[[], None] | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if not self.waker.done():
            self.waker.set_result(None)
        if self.interrupt is not None:
            self.interrupt()


_RUNNING: weakref.WeakKeyDictionary[Any, dict[int, Running]] = weakref.WeakKeyDictionary()


def table_of(assoc: Any) -> dict[int, Running]:
    """The association's running requests by Message ID (made on first use)."""
    table = _RUNNING.get(assoc)
    if table is None:
        table = _RUNNING[assoc] = {}
    return table


def find(assoc: Any, message_id: int | None) -> Running | None:
    table = _RUNNING.get(assoc)
    return None if table is None or message_id is None else table.get(message_id)


def is_cancelled(assoc: Any, message_id: int | None) -> bool:
    """Whether the peer cancelled its request ``message_id`` on ``assoc``."""
    entry = find(assoc, message_id)
    return entry is not None and entry.cancelled

"""``UPSService``: Unified Procedure Step Push, Pull and Query, and N-GET / C-FIND
of Watch (PS3.4 Annex CC); docs/ups.md says what it answers.

Routing is by the presentation context's SOP class (every command names the Push
class, CC.3.1): N-CREATE and Request UPS Cancel (action 2) on Push; N-SET and
Change UPS State (action 1) on Pull; N-GET on all four; C-FIND on Pull, Watch and
Query. N-SET and Change UPS State are served on a Push context too: a stack that
finds the Push UID in the command picks the Push context when one is accepted
(pynetdicom does), and the workitem's own rules (the Transaction UID lock) hold
whichever context a request comes on. Watch's N-ACTION (subscriptions, and cancel
requests sent on a Watch context) belongs to the subscription side, which may call
``request_cancel``. The service is also the subscription side's ``WorkitemSource``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from pydicom.dataset import Dataset

from ... import evt
from ...events import Event
from ...handlers import Binding
from ...store.interface import UPSRetention, UPSWorkitems
from ..base import Service, SOPClass
from ..quotas import Quotas
from . import pull, push, query
from . import statuses as st
from .hooks import NoEvents, WorkitemEvents
from .matching import matches
from .records import Answer, Context, log, status
from .retention import Purger, Retention
from .uids import (
    ACTION_CHANGE_STATE,
    ACTION_REQUEST_CANCEL,
    UPS_PULL,
    UPS_PUSH,
    UPS_QUERY,
    UPS_WATCH,
)

__all__ = ["UPSService"]


class UPSService(Service):
    """The UPS workitem SCP over ``store``; ``events`` is told of each change once
    it is stored (``NoEvents``: nobody is). ``retention``: how long COMPLETED and
    CANCELED workitems are kept (retention.py; default forever), purged while the
    service runs if the store can (``UPSRetention``); ``quotas``: its
    ``ups_max_workitem`` bounds one workitem (0x0213 past it)."""

    name = "ups"
    sop_classes = (SOPClass(UPS_PUSH), SOPClass(UPS_PULL), SOPClass(UPS_WATCH),
                   SOPClass(UPS_QUERY))

    def __init__(self, store: UPSWorkitems, events: WorkitemEvents | None = None, *,
                 retention: Retention | None = None, quotas: Quotas | None = None) -> None:
        self.ctx = Context(store, events if events is not None else NoEvents(),
                           (quotas or Quotas()).ups_max_workitem)
        self.retention = retention or Retention()
        self.purger: Purger | None = None
        if self.retention.keep_final > 0:
            if hasattr(store, "ups_purge"):
                self.purger = Purger(cast(UPSRetention, store), self.retention)
            else:
                log.warning("ups: this store cannot delete workitems; final ones are kept")

    async def start(self) -> None:
        if self.purger is not None:
            self.purger.start()

    async def stop(self, grace: float = 5.0) -> None:
        if self.purger is not None:
            await self.purger.stop()

    @property
    def events(self) -> WorkitemEvents:
        return self.ctx.events

    @events.setter
    def events(self, events: WorkitemEvents) -> None:
        """Join the subscription side after both are built."""
        self.ctx.events = events

    def handlers(self) -> list[Binding]:
        bindings = [
            Binding(evt.EVT_N_CREATE, self.on_n_create, UPS_PUSH),
            Binding(evt.EVT_N_ACTION, self.on_push_action, UPS_PUSH),
            Binding(evt.EVT_N_SET, self.on_n_set, UPS_PULL),
            Binding(evt.EVT_N_SET, self.on_n_set, UPS_PUSH),
            Binding(evt.EVT_N_ACTION, self.on_pull_action, UPS_PULL),
        ]
        bindings += [Binding(evt.EVT_N_GET, self.on_n_get, uid)
                     for uid in (UPS_PUSH, UPS_PULL, UPS_WATCH, UPS_QUERY)]
        bindings += [Binding(evt.EVT_C_FIND, self.on_c_find, uid)
                     for uid in (UPS_PULL, UPS_WATCH, UPS_QUERY)]
        return bindings

    # -- handlers

    async def on_n_create(self, event: Event) -> Answer:
        return await push.n_create(self.ctx, event)

    async def on_push_action(self, event: Event) -> Answer:
        if event.action_type == ACTION_CHANGE_STATE:  # a Pull action on a Push context
            return await pull.change_state_action(self.ctx, event)
        if event.action_type != ACTION_REQUEST_CANCEL:
            return _no_such_action(event.action_type, "Push")
        return await push.request_cancel(self.ctx, event)

    async def request_cancel(self, event: Event) -> Answer:
        """Request UPS Cancel, for a Watch context's N-ACTION type 2 too."""
        return await push.request_cancel(self.ctx, event)

    async def on_pull_action(self, event: Event) -> Answer:
        if event.action_type != ACTION_CHANGE_STATE:
            return _no_such_action(event.action_type, "Pull")
        return await pull.change_state_action(self.ctx, event)

    async def on_n_set(self, event: Event) -> Answer:
        return await pull.n_set(self.ctx, event)

    async def on_n_get(self, event: Event) -> Answer:
        return await query.n_get(self.ctx, event)

    async def on_c_find(self, event: Event) -> AsyncIterator[Any]:
        async for result in query.c_find(self.ctx, event):
            yield result

    # -- WorkitemSource

    async def workitem(self, uid: str) -> Dataset | None:
        return await query.workitem(self.ctx, uid)

    def workitems(self, identifier: Dataset | None) -> AsyncIterator[Dataset]:
        return query.workitems(self.ctx, identifier)

    def matches(self, identifier: Dataset, workitem: Dataset) -> bool:
        return matches(identifier, workitem)


def _no_such_action(action_type: int, sop_class: str) -> Answer:
    return status(st.NO_SUCH_ACTION, f"no action type {action_type} in UPS {sop_class}"), None

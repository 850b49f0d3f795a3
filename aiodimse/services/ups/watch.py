"""UPS Watch N-ACTION (PS3.4 CC.2.3): subscribe, unsubscribe, suspend global.

The request names a workitem, or one of the two well-known instances: the UPS
Global Subscription (every workitem, now and to come) or the Filtered Global one
(those matching the matching keys sent beside Receiving AE and Deletion Lock).
What is answered (docs/ups.md holds the status table):

* Subscribe (3): Receiving AE (0074,1234) and Deletion Lock (0074,1230), both Type
  1/1 in Table CC.2.3-1, Deletion Lock's Enumerated Values TRUE and FALSE (0x0115
  when either is missing or the lock is another value: PS3.7 10.1.4 gives N-ACTION
  Invalid Argument Value, not Missing Attribute); a Receiving AE not in
  the AE table: 0xC308 (its reports could go nowhere); an unknown workitem: 0xC307.
  Success queues the initial UPS State Report (for a global subscription: one per
  workitem it covers now), in the transaction that records the subscription.
* Unsubscribe (4): from a workitem (0xC307 when neither subscribed nor known); from
  either global instance: the global subscription and every workitem subscription
  of that AE end.
* Suspend Global Subscription (5): on a global instance only (else 0xC314); the AE
  keeps its workitem subscriptions, gains no new workitems.
* Request UPS Cancel (2) on the Watch class is the workitem service's: passed to
  ``request_cancel`` when given, else 0x0123 as any other Action Type ID.
* A store that fails: 0x0213 when full, else 0x0110 (``store_status``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pydicom.dataset import Dataset

from ... import evt
from ...datasets import DatasetDecodeError, refusal_status
from ...events import Event
from ...handlers import Binding
from ...store.interface import StoreError, UPSGlobalSubscription
from ..answers import status as _status
from ..base import Service, SOPClass
from ..delivery import Deliverer
from ..store_status import store_comment, store_log_level, store_status
from .events import SubscriptionEvents, UPSStores, log, state_report
from .hooks import WorkitemSource
from .statuses import (
    ACTION_NOT_APPROPRIATE,
    INVALID_ARGUMENT,
    NO_SUCH_ACTION,
    NO_SUCH_WORKITEM,
    UNKNOWN_RECEIVING_AE,
)
from .uids import (
    ACTION_REQUEST_CANCEL,
    ACTION_SUBSCRIBE,
    ACTION_SUSPEND_GLOBAL,
    ACTION_UNSUBSCRIBE,
    FILTERED_GLOBAL_SUBSCRIPTION,
    GLOBAL_SUBSCRIPTION,
    UPS_WATCH,
)

__all__ = ["UPSWatchService", "UNKNOWN_WORKITEM", "UNKNOWN_RECEIVING_AE",
           "ACTION_NOT_APPROPRIATE"]

Answer = tuple[int | Dataset, Dataset | None]

UNKNOWN_WORKITEM = NO_SUCH_WORKITEM  # no such UPS instance managed by this SCP
_RECEIVING_AE = 0x00741234
_DELETION_LOCK = 0x00741230
_GLOBALS = (GLOBAL_SUBSCRIPTION, FILTERED_GLOBAL_SUBSCRIPTION)
_NOT_KEYS = ("ReceivingAE", "DeletionLock")  # of the Action Information: not a filter


class UPSWatchService(SubscriptionEvents, Service):
    """The Watch N-ACTIONs and the event reports, a :class:`Service`.

    ``deliverer`` sends the reports (it may be shared with other services: each
    starts and stops it); its AE table (``peers``) decides which Receiving AEs are
    known. At ``start`` it sends an SCP Status Change (RESTARTED) to every
    subscribed AE; at ``stop`` one saying GOING DOWN, waiting up to half the grace
    for them to be delivered (those not delivered stay queued).
    """

    name = "ups-watch"
    sop_classes = (SOPClass(UPS_WATCH),)

    def __init__(self, store: UPSStores, source: WorkitemSource, deliverer: Deliverer, *,
                 request_cancel: Callable[[Event], Awaitable[Answer]] | None = None
                 ) -> None:
        super().__init__(store, source, deliverer)
        self.request_cancel = request_cancel
        self.subscribed = 0  # counters for a summary log line
        self.unsubscribed = 0

    def handlers(self) -> list[Binding]:
        return [Binding(evt.EVT_N_ACTION, self.on_n_action, UPS_WATCH)]

    async def start(self) -> None:
        await self.deliverer.start()
        await self.scp_status("RESTARTED")

    async def stop(self, grace: float = 5.0) -> None:
        keys = await self.scp_status("GOING DOWN")
        waiters = self.reports.watch(keys)
        if waiters:
            await asyncio.wait([asyncio.ensure_future(w.wait()) for w in waiters],
                               timeout=grace / 2)
            for waiter in waiters:
                waiter.set()  # lets the waits left end
        await self.deliverer.stop(grace / 2)

    # -- the N-ACTION ------------------------------------------------------------------

    async def on_n_action(self, event: Event) -> Answer:
        action = event.action_type
        if action == ACTION_REQUEST_CANCEL and self.request_cancel is not None:
            return await self.request_cancel(event)
        if action not in (ACTION_SUBSCRIBE, ACTION_UNSUBSCRIBE, ACTION_SUSPEND_GLOBAL):
            return NO_SUCH_ACTION, None
        uid = str(event.request.RequestedSOPInstanceUID)
        try:
            info = event.action_information
        except DatasetDecodeError as exc:
            return _status(refusal_status(exc), str(exc)), None
        aet = str(info.get("ReceivingAE", "") or "").strip()
        if not aet:
            return _status(INVALID_ARGUMENT, "Receiving AE (0074,1234) missing",
                           _RECEIVING_AE), None
        try:
            if action == ACTION_SUBSCRIBE:
                return await self._subscribe(uid, aet, info), None
            if action == ACTION_UNSUBSCRIBE:
                return await self._unsubscribe(uid, aet), None
            return await self._suspend(uid, aet), None
        except StoreError as exc:
            code = store_status(exc, event.request.command_field)
            log.log(store_log_level(exc), "UPS action %d on %s for %r failed: %s "
                    "(answered 0x%04X)", action, uid, aet, exc, code)
            return _status(code, store_comment(exc, "subscription")), None

    async def _subscribe(self, uid: str, aet: str, info: Dataset) -> int | Dataset:
        text = str(info.get("DeletionLock", "") or "").strip().upper()
        if not text:
            return _status(INVALID_ARGUMENT, "Deletion Lock (0074,1230) missing",
                           _DELETION_LOCK)
        if text not in ("TRUE", "FALSE"):
            return _status(INVALID_ARGUMENT, "Deletion Lock must be TRUE or FALSE", _DELETION_LOCK)
        lock = text == "TRUE"
        if aet not in self.deliverer.peers:
            log.info("UPS subscription refused: Receiving AE %r is not in the AE table", aet)
            return _status(UNKNOWN_RECEIVING_AE, "Receiving AE not in the AE table")
        if uid in _GLOBALS:
            keys = None
            if uid == FILTERED_GLOBAL_SUBSCRIPTION:
                keys = Dataset()
                for element in info:
                    if element.keyword not in _NOT_KEYS:
                        keys.add(element)
            await self._subscribe_global(aet, lock, keys)
        else:
            workitem = await self.source.workitem(uid)
            if workitem is None:
                return _status(UNKNOWN_WORKITEM, "no such UPS instance here")
            report = self.item(aet, uid, state_report(workitem), ordering=uid,
                               now=time.time())
            await self.store.ups_subscribe(aet, uid, lock, [report])
            self.queued += 1
        self.subscribed += 1
        self.deliverer.wake()
        log.debug("UPS subscription of %r to %s (deletion lock %s)", aet, uid, lock)
        return 0x0000

    async def _subscribe_global(self, aet: str, lock: bool, keys: Dataset | None) -> None:
        """Record the global subscription and subscribe the AE to every workitem it
        covers now, each with its initial UPS State Report, in one transaction."""
        uids: list[str] = []
        items = []
        now = time.time()
        async for workitem in self.source.workitems(keys):
            uid = str(workitem.get("SOPInstanceUID", "") or "")
            if uid:
                uids.append(uid)
                items.append(self.item(aet, uid, state_report(workitem), ordering=uid,
                                       now=now))
        sub = UPSGlobalSubscription(aet=aet, deletion_lock=lock,
                                    filter=None if keys is None else keys.to_json())
        await self.store.ups_subscribe_global(sub, uids, items)
        self.queued += len(items)

    async def _unsubscribe(self, uid: str, aet: str) -> int | Dataset:
        if uid in _GLOBALS:
            await self.store.ups_unsubscribe_global(aet)
        elif (not await self.store.ups_unsubscribe(aet, uid)
              and await self.source.workitem(uid) is None):
            return _status(UNKNOWN_WORKITEM, "no such UPS instance here")
        self.unsubscribed += 1
        return 0x0000

    async def _suspend(self, uid: str, aet: str) -> int | Dataset:
        if uid not in _GLOBALS:
            return _status(ACTION_NOT_APPROPRIATE,
                           "suspend applies to a global subscription only")
        await self.store.ups_suspend_global(aet)
        return 0x0000

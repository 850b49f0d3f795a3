"""Storage Commitment Push Model SCP (PS3.4 Annex J) with durable, retried reports.

Each accepted N-ACTION is written to the store, with its report queued, *before*
the response goes out, so an acknowledged request survives a crash. The report
(N-EVENT-REPORT) is sent by the deliverer (``delivery.py``): first on the
requesting association if it is still open, else on a new association to the
requesting AE (address from the AE table), proposing the SCP role for the SOP
class (PS3.4 J.3.3), and retried with exponential backoff until it is delivered or
the deadline passes. The report is built when it is sent, from the instance index
as it is then.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pydicom.dataset import Dataset

from .. import evt
from ..ae import AE
from ..dimse.commands import is_valid_uid
from ..events import Event
from ..handlers import Binding
from ..logs import get_logger
from ..observe import Observer, tell
from ..store.interface import (
    COMMITMENT_KIND,
    Commitment,
    CommitmentStore,
    Delivery,
    DeliveryQueue,
    InstanceIndex,
    QuotaExceeded,
    StoreError,
)
from .answers import status as _status
from .base import Service, SOPClass
from .delivery import Deliverer, DeliveryPolicy, Peer, Report
from .quotas import RESOURCE_LIMITATION, Quotas, over
from .store_status import store_comment, store_log_level, store_status
from .values import first_invalid

__all__ = [
    "STORAGE_COMMITMENT",
    "STORAGE_COMMITMENT_INSTANCE",
    "NO_SUCH_OBJECT_INSTANCE",
    "CLASS_INSTANCE_CONFLICT",
    "NOT_AUTHORIZED",
    "Peer",
    "DeliveryPolicy",
    "build_report",
    "CommitmentStores",
    "StorageCommitmentSCP",
]

log = get_logger("aiodimse.commitment")

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
_TRANSACTION_UID_TAG = 0x00081195
NO_SUCH_OBJECT_INSTANCE = 0x0112  # Failure Reason (0008,1197), PS3.3 C.14.1.1
CLASS_INSTANCE_CONFLICT = 0x0119
NOT_AUTHORIZED = 0x0124  # N-ACTION status: refused, calling AE not in the AE table
_WARNED_AES = 1024  # calling AEs remembered for the once-per-AE warning (16 bytes each)


class CommitmentStores(CommitmentStore, InstanceIndex, DeliveryQueue, Protocol):
    """What the SCP needs of a store: transactions, the index, the report queue."""


def _ref(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def build_report(
    transaction_uid: str,
    refs: Sequence[tuple[str, str]],
    found: Mapping[str, str],
    retrieve_ae_title: str | None = None,
) -> tuple[int, Dataset]:
    """(Event Type ID, Event Information) for ``refs``, given the indexed instances.

    ``found`` maps SOP Instance UID to SOP Class UID. An instance not indexed fails
    with 0x0112; one indexed under another SOP class with 0x0119. Event type 1 when
    all are committed, else 2 with the Failed SOP Sequence (J.3.3.1).
    """
    committed: list[Dataset] = []
    failed: list[Dataset] = []
    for sop_class, sop_instance in refs:
        have = found.get(sop_instance)
        if have == sop_class:
            committed.append(_ref(sop_class, sop_instance))
            continue
        item = _ref(sop_class, sop_instance)
        item.FailureReason = NO_SUCH_OBJECT_INSTANCE if have is None else CLASS_INSTANCE_CONFLICT
        failed.append(item)
    info = Dataset()
    info.TransactionUID = transaction_uid
    if committed and retrieve_ae_title:
        info.RetrieveAETitle = retrieve_ae_title
    if committed:
        info.ReferencedSOPSequence = committed
    if failed:
        info.FailedSOPSequence = failed
    return (2 if failed else 1), info


class StorageCommitmentSCP(Service):
    """The SCP, a :class:`Service`: add it to a ``ServiceSet`` (or bind ``handlers()``
    on a server, then ``await start()`` and ``await stop()``).

    ``reporter`` is the AE used for reports on new associations (its title is the
    calling AE title; its timeouts apply). ``peers`` is the AE table.
    """

    name = "storage_commitment"
    sop_classes = (SOPClass(STORAGE_COMMITMENT),)

    def __init__(
        self,
        store: CommitmentStores,
        reporter: AE,
        peers: Mapping[str, Peer],
        policy: DeliveryPolicy | None = None,
        *,
        owner: str | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.store = store
        self.quotas = quotas or Quotas()
        self.reporter = reporter
        self.peers = dict(peers)
        self.policy = policy or DeliveryPolicy()
        self.deliverer = Deliverer(store, reporter, self.peers, self.policy, owner=owner)
        self.deliverer.add_kind(_CommitmentReports(self))
        self.owner = self.deliverer.owner
        self._warned: set[str] = set()  # unlisted calling AEs warned about
        # Counters for a summary log line (``aiodimse serve`` logs them at INFO).
        self.accepted = 0
        self.delivered = 0
        self.failed_attempts = 0
        self.expired = 0
        self._observer: Observer | None = None

    def handlers(self) -> list[Binding]:
        return [Binding(evt.EVT_N_ACTION, self.on_n_action, STORAGE_COMMITMENT)]

    # -- the N-ACTION --------------------------------------------------------------------

    async def on_n_action(self, event: Event) -> tuple[int | Dataset, Dataset | None]:
        """Validate, record durably, answer; the report follows from the deliverer.

        Refused before anything is stored: no Action Information, or no Transaction
        UID or references (0x0120); a value pydicom would warn about, a Transaction
        UID that is no UID among them (0x0115 invalid argument value, which PS3.7
        lists for N-ACTION, with the element as Offending Element); a request over
        ``Quotas.commitment_max_request`` bytes or a calling AE past its allowance
        (0x0213); a store that fails (``store_status``: 0x0213 when full, else 0x0110;
        the cause logged).
        """
        if event.action_type != 1:
            return 0x0123, None  # no such action
        if str(event.request.RequestedSOPInstanceUID) != STORAGE_COMMITMENT_INSTANCE:
            return _status(0x0112, "use the well-known instance 1.2.840.10008.1.20.1.1"), None
        size, quotas = event.dataset_length, self.quotas
        if not size:
            return _status(0x0120, "Action Information (Transaction UID, Referenced SOP "
                           "Sequence) missing"), None
        if over(quotas.commitment_max_request, size):
            return _status(RESOURCE_LIMITATION,
                           f"Action Information over {quotas.commitment_max_request} bytes"), None
        info = event.action_information
        calling_aet = event.assoc.requestor.ae_title
        bad = first_invalid(info)
        if bad is None and not is_valid_uid(str(info.get("TransactionUID", "") or "0")):
            bad = _TRANSACTION_UID_TAG  # (first_invalid judges by pydicom's rules)
        if bad is not None:
            log.info("commitment refused calling_aet=%r: invalid value in (%04X,%04X)",
                     calling_aet, bad >> 16, bad & 0xFFFF)
            return _status(0x0115, "invalid value", bad), None
        transaction_uid = str(info.get("TransactionUID", "") or "")
        refs: list[tuple[str, str]] = []
        for item in info.get("ReferencedSOPSequence", None) or ():
            sop_class = str(item.get("ReferencedSOPClassUID", "") or "")
            sop_instance = str(item.get("ReferencedSOPInstanceUID", "") or "")
            if not sop_class or not sop_instance:
                return _status(0x0120, "Referenced SOP Class/Instance UID missing"), None
            refs.append((sop_class, sop_instance))
        if not transaction_uid or not refs:
            return _status(0x0120, "Transaction UID and Referenced SOP Sequence needed"), None
        refusal = self._check_reachable(event, transaction_uid)
        if refusal is not None:
            return refusal, None
        now = time.time()
        commitment = Commitment(transaction_uid=transaction_uid, calling_aet=calling_aet,
                                refs=tuple(refs), received_at=now)
        report = Delivery(
            kind=COMMITMENT_KIND, key=transaction_uid, destination=calling_aet,
            sop_class=STORAGE_COMMITMENT, sop_instance=STORAGE_COMMITMENT_INSTANCE,
            payload=json.dumps(refs), created_at=now, deadline=now + self.policy.deadline,
            next_attempt=now,
        )
        try:
            added = await self.store.add_commitment(
                commitment, report, owner=self.owner, lease_until=now + self.policy.lease,
                allowance=quotas.allowance(calling_aet, "commitment"),
            )
        except QuotaExceeded as exc:
            log.warning("commitment refused: %s", exc)
            return _status(RESOURCE_LIMITATION, "calling AE over its commitment quota"), None
        except StoreError as exc:
            code = store_status(exc, event.request.command_field)
            log.log(store_log_level(exc), "commitment transaction=%s not stored: %s "
                    "(answered 0x%04X)", transaction_uid, exc, code)
            return _status(code, store_comment(exc, "commitment")), None
        if not added:
            log.info("commitment refused transaction=%s calling_aet=%s: Transaction UID "
                     "already used", transaction_uid, calling_aet)
            return _status(0x0110, "Transaction UID already used"), None
        self.accepted += 1
        log.debug("commitment accepted transaction=%s calling_aet=%s instances=%d",
                  transaction_uid, calling_aet, len(refs))
        self.deliverer.queued(COMMITMENT_KIND, transaction_uid, event.assoc)
        if self._observer is not None:
            tell(self._observer, "report_queued", transaction_uid, calling_aet,
                 event.assoc, event.message_id)
        return 0x0000, None

    def _check_reachable(self, event: Event, transaction_uid: str) -> Dataset | None:
        """Say at once when the report may never be deliverable; refuse if so set.

        With no AE-table entry the report can go only on the requesting association;
        if the requester releases first (or ``same_association`` is off), never.
        """
        calling = event.assoc.requestor.ae_title
        if calling in self.peers:
            return None
        if self.policy.refuse_unlisted_ae:
            log.info("commitment refused transaction=%r calling_aet=%r: not in the AE "
                     "table", transaction_uid, calling)
            return _status(NOT_AUTHORIZED, "calling AE not in the AE table of this SCP")
        if calling not in self._warned:
            if len(self._warned) >= _WARNED_AES:
                self._warned.clear()
            self._warned.add(calling)
            where = ("only on the requesting association: lost if it is released first"
                     if self.policy.same_association else "nowhere")
            log.warning("commitment requests from calling_aet=%r, which is not in the AE "
                        "table: its reports can be delivered %s (transaction=%r)",
                        calling, where, transaction_uid)
        return None

    # -- delivery (``delivery.Deliverer`` sends the reports) --------------------------

    async def start(self) -> None:
        """Start delivering: pending reports in the store are picked up at once."""
        await self.deliverer.start()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop; deliveries still running after ``grace`` s stay pending in the store."""
        await self.deliverer.stop(grace)

    @property
    def delivering(self) -> int:
        """Associations delivering reports now."""
        return self.deliverer.delivering

    @property
    def observer(self) -> Observer | None:
        """Told of each report queued, sent, delivered, failed, expired (aiodimse.observe)."""
        return self._observer

    @observer.setter
    def observer(self, observer: Observer | None) -> None:
        self._observer = self.deliverer.observer = observer


class _CommitmentReports:
    """The commitment reports' kind: built from the index when sent (J.3.3)."""

    name = COMMITMENT_KIND
    sop_class = STORAGE_COMMITMENT

    def __init__(self, scp: StorageCommitmentSCP) -> None:
        self.scp = scp

    async def build(self, items: Sequence[Delivery]) -> Sequence[Report]:
        refs = [_refs(item) for item in items]
        found = await self.scp.store.find_instances(
            [inst for item_refs in refs for _cls, inst in item_refs])
        title = self.scp.reporter.ae_title
        return [build_report(item.key, item_refs, found, title)
                for item, item_refs in zip(items, refs, strict=True)]

    def delivered(self, item: Delivery, report: Report) -> Mapping[str, Any] | None:
        event_type, info = report
        failed = len(info.get("FailedSOPSequence", []))
        log.debug("report delivered transaction=%s calling_aet=%s event_type=%d "
                  "failed=%d instances=%d", item.key, item.destination, event_type, failed,
                  len(info.get("ReferencedSOPSequence", [])) + failed)
        self.scp.delivered += 1
        return {"event_type": event_type, "failed": failed}

    def failed(self, item: Delivery, error: str, *, expired: bool) -> None:
        self.scp.failed_attempts += 1
        if expired:
            self.scp.expired += 1


def _refs(item: Delivery) -> list[tuple[str, str]]:
    """A queued report's (SOP Class UID, SOP Instance UID) references."""
    return [(str(c), str(i)) for c, i in json.loads(item.payload)]

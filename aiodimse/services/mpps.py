"""Modality Performed Procedure Step SCP (PS3.4 F.7): N-CREATE, N-SET, N-GET.

Instances live in the store as DICOM JSON. The rules enforced are the ones the
standard makes the SCP's job: N-CREATE only with Performed Procedure Step Status
"IN PROGRESS" (else 0x0106), and no change after the step is COMPLETED or
DISCONTINUED (0x0110). N-SET is one read-modify-write transaction, so concurrent
updates from several workers cannot lose each other's changes.

What is refused before anything is stored (the library refused an instance UID that
is no UID already, 0x0117, and an N-SET without a data set, 0x0110):

* N-CREATE without an attribute list: 0x0120; an empty N-SET modification list: 0x0110;
* a value pydicom would warn about (``values.first_invalid``): 0x0106 with the
  element as Offending Element;
* a data set over ``Quotas.mpps_max_request`` bytes as received, an instance over
  ``mpps_max_instance`` bytes stored, a calling AE past its allowance: 0x0213;
* a store that fails (``StoreError``): 0x0213 when it is full, else 0x0110
  (``store_status``), with the cause logged.
"""

from __future__ import annotations

import time
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from .. import evt
from ..datasets import DatasetDecodeError, refusal_status
from ..events import Event
from ..handlers import Binding
from ..logs import get_logger
from ..store.interface import MPPSRow, MPPSStore, QuotaExceeded, StoreError
from .answers import status as _status
from .base import Service, SOPClass
from .quotas import RESOURCE_LIMITATION, Quotas, over
from .store_status import store_comment, store_log_level, store_status
from .values import first_invalid

__all__ = ["MPPS", "IN_PROGRESS", "FINAL_STATES", "MPPSSCP"]

log = get_logger("aiodimse.mpps")

MPPS = "1.2.840.10008.3.1.2.3.3"
IN_PROGRESS = "IN PROGRESS"
FINAL_STATES = frozenset({"COMPLETED", "DISCONTINUED"})
_STATES = FINAL_STATES | {IN_PROGRESS}
_STATUS_TAG = 0x00400252  # Performed Procedure Step Status

Answer = tuple[int | Dataset, Dataset | None]


def _pps_status(ds: Dataset) -> str:
    return str(ds.get("PerformedProcedureStepStatus", "") or "").strip().upper()


class MPPSSCP(Service):
    """The MPPS SCP, a :class:`Service`: add it to a ``ServiceSet`` (or bind
    ``handlers()`` on a server that supports the MPPS class)."""

    name = "mpps"
    sop_classes = (SOPClass(MPPS),)

    def __init__(self, store: MPPSStore, quotas: Quotas | None = None) -> None:
        self.store = store
        self.quotas = quotas or Quotas()
        self.created = 0  # counters for a summary log line
        self.updated = 0
        self.refused = 0

    def handlers(self) -> list[Binding]:
        return [
            Binding(evt.EVT_N_CREATE, self.on_n_create, MPPS),
            Binding(evt.EVT_N_SET, self.on_n_set, MPPS),
            Binding(evt.EVT_N_GET, self.on_n_get, MPPS),
        ]

    def _refuse(self, code: int, comment: str, offending: int | None = None) -> Answer:
        self.refused += 1
        return _status(code, comment, offending), None

    def _checked(self, event: Event, data: Dataset) -> Answer | None:
        """The refusal for a data set with a value pydicom would warn about, else None."""
        bad = first_invalid(data)
        if bad is None:
            return None
        log.info("mpps refused calling_aet=%r: invalid value in (%04X,%04X)",
                 event.assoc.requestor.ae_title, bad >> 16, bad & 0xFFFF)
        return self._refuse(0x0106, "invalid attribute value", bad)

    def _store_failed(self, what: str, event: Event, exc: StoreError) -> Answer:
        code = store_status(exc, event.request.command_field)
        log.log(store_log_level(exc), "mpps %s not stored: %s (answered 0x%04X)", what, exc,
                code)
        return self._refuse(code, store_comment(exc, "MPPS"))

    async def on_n_create(self, event: Event) -> Answer:
        """Store a new step; the SCP assigns the UID when the SCU gave none."""
        size, quotas = event.dataset_length, self.quotas
        if not size:
            return self._refuse(0x0120, "N-CREATE needs the MPPS attribute list")
        if over(quotas.mpps_max_request, size):
            return self._refuse(RESOURCE_LIMITATION,
                                f"attribute list over {quotas.mpps_max_request} bytes")
        requested = event.request.AffectedSOPInstanceUID
        uid = str(requested) if requested else str(generate_uid())
        try:
            attrs = event.attribute_list
        except DatasetDecodeError as exc:  # refused on arrival, never stored
            return self._refuse(refusal_status(exc), str(exc)[:64])
        refused = self._checked(event, attrs)
        if refused is not None:
            return refused
        state = _pps_status(attrs)
        if state != IN_PROGRESS:
            return _status(0x0106, "Performed Procedure Step Status must be IN PROGRESS",
                           _STATUS_TAG), None
        calling_aet = event.assoc.requestor.ae_title
        row = MPPSRow(
            sop_instance_uid=uid,
            status=state,
            dataset=attrs.to_json(),
            calling_aet=calling_aet,
        )
        if over(quotas.mpps_max_instance, len(row.dataset)):
            return self._refuse(RESOURCE_LIMITATION,
                                f"MPPS instance over {quotas.mpps_max_instance} bytes")
        try:
            added = await self.store.mpps_create(row, time.time(),
                                                 quotas.allowance(calling_aet, "mpps"))
        except QuotaExceeded as exc:
            log.warning("mpps refused: %s", exc)
            return self._refuse(RESOURCE_LIMITATION, "calling AE over its MPPS quota")
        except StoreError as exc:
            return self._store_failed("N-CREATE", event, exc)
        if not added:
            return _status(0x0111, "SOP Instance already exists"), None
        self.created += 1
        log.debug("mpps created uid=%s calling_aet=%s", uid, row.calling_aet)
        status = Dataset()
        status.Status = 0x0000
        status.AffectedSOPInstanceUID = uid
        return status, attrs

    async def on_n_set(self, event: Event) -> Answer:
        """Apply the Modification List unless the step is already final."""
        size, quotas = event.dataset_length, self.quotas
        if not size:  # (none at all: the library answered 0x0110 already)
            return self._refuse(0x0110, "empty Modification List")
        if over(quotas.mpps_max_request, size):
            return self._refuse(RESOURCE_LIMITATION,
                                f"modification list over {quotas.mpps_max_request} bytes")
        uid = str(event.request.RequestedSOPInstanceUID)
        try:
            mods = event.modification_list
        except DatasetDecodeError as exc:
            return self._refuse(refusal_status(exc), str(exc)[:64])
        refused = self._checked(event, mods)
        if refused is not None:
            return refused
        new_state = _pps_status(mods) if "PerformedProcedureStepStatus" in mods else None
        if new_state is not None and new_state not in _STATES:
            return _status(0x0106, f"invalid Performed Procedure Step Status {new_state}",
                           _STATUS_TAG), None
        limit = quotas.mpps_max_instance

        def change(current: MPPSRow | None) -> MPPSRow | Dataset:
            if current is None:
                return _status(0x0112, "no such MPPS instance")
            if current.status in FINAL_STATES:
                return _status(0x0110, "Performed Procedure Step Object may no longer be updated")
            ds = Dataset.from_json(current.dataset)
            for elem in mods:
                ds[elem.tag] = elem
            dataset = ds.to_json()
            if over(limit, len(dataset)):
                return _status(RESOURCE_LIMITATION, f"MPPS instance over {limit} bytes")
            return MPPSRow(
                sop_instance_uid=uid,
                status=new_state or current.status,
                dataset=dataset,
                calling_aet=current.calling_aet,
            )

        calling_aet = event.assoc.requestor.ae_title
        try:
            result = await self.store.mpps_update(uid, change, time.time(),
                                                  quotas.allowance(calling_aet, "mpps"))
        except QuotaExceeded as exc:
            log.warning("mpps refused: %s", exc)
            return self._refuse(RESOURCE_LIMITATION, "calling AE over its MPPS quota")
        except StoreError as exc:
            return self._store_failed("N-SET", event, exc)
        if isinstance(result, Dataset):
            return result, None
        self.updated += 1
        log.debug("mpps updated uid=%s calling_aet=%s status=%s", uid, calling_aet,
                  result.status)
        return 0x0000, mods

    async def on_n_get(self, event: Event) -> Answer:
        """Return the stored attributes (all, or the requested ones)."""
        uid = str(event.request.RequestedSOPInstanceUID)
        try:
            row = await self.store.mpps_get(uid)
        except StoreError as exc:
            return self._store_failed("N-GET", event, exc)
        if row is None:
            return _status(0x0112, "no such MPPS instance"), None
        ds = Dataset.from_json(row.dataset)
        wanted = event.attribute_identifiers
        if not wanted:
            return 0x0000, ds
        reply = Dataset()
        for tag in wanted:
            if tag in ds:
                reply[tag] = ds[tag]
            else:
                reply[tag] = _empty(int(tag))
        return 0x0000, reply


def _empty(tag: int) -> DataElement:
    """A zero-length element: how N-GET answers for an attribute it has no value for."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = "UN"
    value: Any = [] if vr == "SQ" else None
    return DataElement(tag, vr, value)

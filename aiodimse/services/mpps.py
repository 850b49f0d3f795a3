"""Modality Performed Procedure Step SCP (PS3.4 F.7): N-CREATE, N-SET, N-GET.

Instances live in the store as DICOM JSON. The rules enforced are the ones the
standard makes the SCP's job: N-CREATE only with Performed Procedure Step Status
"IN PROGRESS" (else 0x0106), and no change after the step is COMPLETED or
DISCONTINUED (0x0110). N-SET is one read-modify-write transaction, so concurrent
updates from several workers cannot lose each other's changes.
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
from ..handlers import HandlerSpec
from ..logs import get_logger
from ..store.db import AsyncStore, MPPSRow

__all__ = ["MPPS", "IN_PROGRESS", "FINAL_STATES", "MPPSSCP"]

log = get_logger("aiodimse.mpps")

MPPS = "1.2.840.10008.3.1.2.3.3"
IN_PROGRESS = "IN PROGRESS"
FINAL_STATES = frozenset({"COMPLETED", "DISCONTINUED"})
_STATES = FINAL_STATES | {IN_PROGRESS}
_STATUS_TAG = 0x00400252  # Performed Procedure Step Status

Answer = tuple[int | Dataset, Dataset | None]


def _status(code: int, comment: str, offending: int | None = None) -> Dataset:
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    if offending is not None:
        ds.OffendingElement = [offending]
    return ds


def _pps_status(ds: Dataset) -> str:
    return str(ds.get("PerformedProcedureStepStatus", "") or "").strip().upper()


class MPPSSCP:
    """The MPPS SCP: bind ``handlers()`` on a server that supports the MPPS class."""

    def __init__(self, store: AsyncStore) -> None:
        self.store = store
        self.created = 0  # counters for a summary log line
        self.updated = 0

    def handlers(self) -> list[HandlerSpec]:
        return [
            (evt.EVT_N_CREATE, self.on_n_create),
            (evt.EVT_N_SET, self.on_n_set),
            (evt.EVT_N_GET, self.on_n_get),
        ]

    async def on_n_create(self, event: Event) -> Answer:
        """Store a new step; the SCP assigns the UID when the SCU gave none."""
        requested = event.request.AffectedSOPInstanceUID
        uid = str(requested) if requested else str(generate_uid())
        try:
            attrs = event.attribute_list
        except DatasetDecodeError as exc:  # refused on arrival, never stored
            return _status(refusal_status(exc), str(exc)), None
        state = _pps_status(attrs)
        if state != IN_PROGRESS:
            return _status(0x0106, "Performed Procedure Step Status must be IN PROGRESS",
                           _STATUS_TAG), None
        row = MPPSRow(
            sop_instance_uid=uid,
            status=state,
            dataset=attrs.to_json(),
            calling_aet=event.assoc.requestor.ae_title,
        )
        added = await self.store.call(self.store.store.mpps_create, row, time.time())
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
        uid = str(event.request.RequestedSOPInstanceUID)
        try:
            mods = event.modification_list
        except DatasetDecodeError as exc:
            return _status(refusal_status(exc), str(exc)), None
        new_state = _pps_status(mods) if "PerformedProcedureStepStatus" in mods else None
        if new_state is not None and new_state not in _STATES:
            return _status(0x0106, f"invalid Performed Procedure Step Status {new_state}",
                           _STATUS_TAG), None

        def change(current: MPPSRow | None) -> MPPSRow | Dataset:
            if current is None:
                return _status(0x0112, "no such MPPS instance")
            if current.status in FINAL_STATES:
                return _status(0x0110, "Performed Procedure Step Object may no longer be updated")
            ds = Dataset.from_json(current.dataset)
            for elem in mods:
                ds[elem.tag] = elem
            return MPPSRow(
                sop_instance_uid=uid,
                status=new_state or current.status,
                dataset=ds.to_json(),
                calling_aet=current.calling_aet,
            )

        result = await self.store.call(self.store.store.mpps_update, uid, change, time.time())
        if isinstance(result, Dataset):
            return result, None
        self.updated += 1
        log.debug("mpps updated uid=%s calling_aet=%s status=%s", uid,
                  event.assoc.requestor.ae_title, result.status)
        return 0x0000, mods

    async def on_n_get(self, event: Event) -> Answer:
        """Return the stored attributes (all, or the requested ones)."""
        uid = str(event.request.RequestedSOPInstanceUID)
        row = await self.store.call(self.store.store.mpps_get, uid)
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

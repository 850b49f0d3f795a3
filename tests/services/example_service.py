"""The example service of docs/internals.md, "How to add a service" (shown there verbatim).

Media Creation Management (PS3.4 Annex S) reduced to N-CREATE and N-GET, requests
kept in memory: a second N-CREATE class beside MPPS for the routing tests.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import evt
from aiodimse.events import Event
from aiodimse.handlers import Binding
from aiodimse.services import Service, SOPClass

MEDIA_CREATION = "1.2.840.10008.5.1.1.33"


def failure(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment
    return status


class MediaCreationSCP(Service):
    """Media Creation Management SCP: N-CREATE records a request, N-GET reads it."""

    name = "media_creation"
    sop_classes = (SOPClass(MEDIA_CREATION),)

    def __init__(self) -> None:
        self.requests: dict[str, Dataset] = {}

    def handlers(self) -> list[Binding]:
        return [
            Binding(evt.EVT_N_CREATE, self.on_n_create, MEDIA_CREATION),
            Binding(evt.EVT_N_GET, self.on_n_get, MEDIA_CREATION),
        ]

    async def on_n_create(self, event: Event) -> tuple[int | Dataset, Dataset | None]:
        if not event.dataset_length:
            return failure(0x0120, "N-CREATE needs the request's attributes"), None
        uid = str(event.request.AffectedSOPInstanceUID or generate_uid())
        if uid in self.requests:
            return failure(0x0111, "request exists already"), None
        attrs = event.attribute_list
        attrs.ExecutionStatus = "IDLE"
        self.requests[uid] = attrs
        status = Dataset()
        status.Status = 0x0000
        status.AffectedSOPInstanceUID = uid  # the SCU learns the UID we chose
        return status, attrs

    async def on_n_get(self, event: Event) -> tuple[int | Dataset, Dataset | None]:
        found = self.requests.get(str(event.request.RequestedSOPInstanceUID))
        if found is None:
            return failure(0x0112, "no such request"), None
        return 0x0000, found

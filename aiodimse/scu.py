"""The DIMSE services as SCU: pynetdicom's ``send_*`` names and return shapes.

A mixin of ``Association``, kept apart so that the association module holds the
protocol machinery and this one the user-facing calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from .dimse.messages import (
    CEchoRQ,
    DIMSEMessage,
    NActionRQ,
    NCreateRQ,
    NDeleteRQ,
    NEventReportRQ,
    NGetRQ,
    NSetRQ,
    build_trusted,
)
from .presentation import VERIFICATION
from .requests import status_dataset

if TYPE_CHECKING:
    from .dimse.assemble import ReceivedMessage
    from .presentation import PresentationContext

__all__ = ["ServiceCalls"]

# UIDs that passed the message classes' own check once (exact str only): a request
# whose UIDs are all here is built without re-validating. Bounded: cleared when full.
_VALID_UIDS: set[str] = set()
_VALID_UIDS_MAX = 1024


def _remember_uids(*uids: str) -> None:
    if len(_VALID_UIDS) >= _VALID_UIDS_MAX:
        _VALID_UIDS.clear()
    _VALID_UIDS.update(uids)


def _n_action_rq(
    message_id: int, class_uid: str, instance_uid: str, action_type: int
) -> NActionRQ:
    """NActionRQ(...), validating the user's values only when not seen valid before."""
    if (
        type(class_uid) is str
        and type(instance_uid) is str
        and type(action_type) is int
        and 0 <= action_type <= 0xFFFF
        and class_uid in _VALID_UIDS
        and instance_uid in _VALID_UIDS
    ):
        return build_trusted(
            NActionRQ,
            {
                "MessageID": message_id,
                "RequestedSOPClassUID": class_uid,
                "RequestedSOPInstanceUID": instance_uid,
                "ActionTypeID": action_type,
            },
        )
    msg = NActionRQ(
        MessageID=message_id,
        RequestedSOPClassUID=class_uid,
        RequestedSOPInstanceUID=instance_uid,
        ActionTypeID=action_type,
    )
    if type(class_uid) is str and type(instance_uid) is str:
        _remember_uids(class_uid, instance_uid)
    return msg


class ServiceCalls:
    """``send_c_echo`` and ``send_n_*``; each waits for the response (DIMSE timeout)."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by Association

        def _context_for(
            self, sop_class_uid: str, meta_uid: str | None, *, as_scp: bool = False
        ) -> PresentationContext: ...

        async def _request(
            self,
            context: PresentationContext,
            build: Callable[[int], DIMSEMessage],
            dataset: Dataset | None,
        ) -> ReceivedMessage: ...

        def _result(
            self, received: ReceivedMessage, *, reply: bool
        ) -> tuple[Dataset, Dataset | None]: ...

    async def send_c_echo(self) -> Dataset:
        """C-ECHO: returns the status Dataset."""
        ctx = self._context_for(VERIFICATION, None)
        received = await self._request(
            ctx, lambda i: CEchoRQ(MessageID=i, AffectedSOPClassUID=VERIFICATION), None
        )
        return status_dataset(received.message)

    async def send_n_action(
        self,
        dataset: Dataset | None,
        action_type: int,
        class_uid: str,
        instance_uid: str,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-ACTION: (status Dataset, Action Reply Dataset or None)."""
        ctx = self._context_for(class_uid, meta_uid)
        received = await self._request(
            ctx,
            lambda i: _n_action_rq(i, class_uid, instance_uid, action_type),
            dataset,
        )
        return self._result(received, reply=True)

    async def send_n_create(
        self,
        dataset: Dataset | None,
        class_uid: str,
        instance_uid: str | None = None,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-CREATE: the status Dataset also carries the AffectedSOPInstanceUID."""
        ctx = self._context_for(class_uid, meta_uid)
        received = await self._request(
            ctx,
            lambda i: NCreateRQ(
                MessageID=i, AffectedSOPClassUID=class_uid, AffectedSOPInstanceUID=instance_uid
            ),
            dataset,
        )
        status, reply = self._result(received, reply=True)
        if "AffectedSOPInstanceUID" not in status and instance_uid:
            status.AffectedSOPInstanceUID = instance_uid
        return status, reply

    async def send_n_delete(
        self, class_uid: str, instance_uid: str, meta_uid: str | None = None
    ) -> Dataset:
        """N-DELETE: returns the status Dataset."""
        ctx = self._context_for(class_uid, meta_uid)
        received = await self._request(
            ctx,
            lambda i: NDeleteRQ(
                MessageID=i, RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid
            ),
            None,
        )
        return status_dataset(received.message)

    async def send_n_event_report(
        self,
        dataset: Dataset | None,
        event_type: int,
        class_uid: str,
        instance_uid: str,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-EVENT-REPORT: (status Dataset, Event Reply Dataset or None)."""
        ctx = self._context_for(class_uid, meta_uid, as_scp=True)
        received = await self._request(
            ctx,
            lambda i: NEventReportRQ(
                MessageID=i,
                AffectedSOPClassUID=class_uid,
                AffectedSOPInstanceUID=instance_uid,
                EventTypeID=event_type,
            ),
            dataset,
        )
        return self._result(received, reply=True)

    async def send_n_get(
        self,
        identifier_list: Sequence[int] | None,
        class_uid: str,
        instance_uid: str,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-GET: (status Dataset, Attribute List Dataset or None)."""
        ctx = self._context_for(class_uid, meta_uid)
        tags = tuple(int(t) for t in identifier_list) if identifier_list else None
        received = await self._request(
            ctx,
            lambda i: NGetRQ(
                MessageID=i,
                RequestedSOPClassUID=class_uid,
                RequestedSOPInstanceUID=instance_uid,
                AttributeIdentifierList=tags,
            ),
            None,
        )
        return self._result(received, reply=True)

    async def send_n_set(
        self,
        dataset: Dataset,
        class_uid: str,
        instance_uid: str,
        meta_uid: str | None = None,
    ) -> tuple[Dataset, Dataset | None]:
        """N-SET: (status Dataset, Attribute List Dataset or None)."""
        ctx = self._context_for(class_uid, meta_uid)
        received = await self._request(
            ctx,
            lambda i: NSetRQ(
                MessageID=i, RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid
            ),
            dataset,
        )
        return self._result(received, reply=True)

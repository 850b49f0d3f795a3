"""The DIMSE services as SCU: pynetdicom's ``send_*`` names and return shapes.

A mixin of ``Association``, kept apart so that the association module holds the
protocol machinery and this one the user-facing calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.uid import UID

from . import caches
from .datasets import decode_dataset
from .dimse.commands import CommandTemplate, command_template, encode_command
from .dimse.messages import (
    CEchoRQ,
    DIMSEMessage,
    NActionRQ,
    NCreateRQ,
    NDeleteRQ,
    NEventReportRQ,
    NGetRQ,
    NSetRQ,
)
from .presentation import VERIFICATION
from .requests import status_dataset
from .status import is_performed

if TYPE_CHECKING:
    from .dimse.assemble import ReceivedMessage
    from .presentation import PresentationContext
    from .settings import AESettings

__all__ = ["ServiceCalls"]

class _Command:
    """What ``_request`` needs of a request: its command set for a Message ID.

    ``build`` makes (and validates) the message; a ``template`` of its encoding,
    when there is one, skips that per request. ``message`` is for DEBUG logs only.
    """

    __slots__ = ("build", "template")

    def __init__(
        self, build: Callable[[int], DIMSEMessage], template: CommandTemplate | None = None
    ) -> None:
        self.build = build
        self.template = template

    def encode(self, message_id: int, has_dataset: bool) -> bytes:
        template = self.template
        if template is not None:  # made for this has_dataset (part of the cache key)
            return template.encode(message_id)
        return encode_command(self.build(message_id), has_dataset=has_dataset)

    def message(self, message_id: int) -> DIMSEMessage:
        return self.build(message_id)


# Templated requests by their values (key: message class, field values, has_dataset).
# A key is added only after its message was built, and so validated, once; values
# of other types than those below are never cached, so a value that would fail
# validation (a bool Action Type ID equal to 1, say) always reaches it. Bounded:
# cleared when full.
_TEMPLATES: dict[tuple[object, ...], _Command] = {}
_TEMPLATES_MAX = 256
_TEMPLATE_UIDS_MAX = 128  # longer UIDs (never valid ones) are not kept: under 128 kB in all
_UID_TYPES = (str, UID)  # exact types: equal values encode alike and validate alike


def _templated(key: tuple[object, ...], build: Callable[[int], DIMSEMessage]) -> _Command:
    """The cached command of ``key``, made from ``build`` (validating) on a miss."""
    command = _TEMPLATES.get(key)
    if command is None:
        if not caches.enabled:  # built, validated and encoded each time
            return _Command(build)
        has_dataset = key[-1]
        assert type(has_dataset) is bool
        template = command_template(build(1), has_dataset=has_dataset)
        if len(_TEMPLATES) >= _TEMPLATES_MAX:
            _TEMPLATES.clear()
        _TEMPLATES[key] = command = _Command(build, template)
    return command


caches.register("scu.templates", "module", lambda _: len(_TEMPLATES), _TEMPLATES.clear)


def _n_action_command(
    class_uid: str, instance_uid: str, action_type: int, has_dataset: bool
) -> _Command:
    trusted = (
        type(class_uid) in _UID_TYPES
        and type(instance_uid) in _UID_TYPES
        and type(action_type) is int
        and len(class_uid) + len(instance_uid) <= _TEMPLATE_UIDS_MAX  # a byte bound
    )
    key = (NActionRQ, class_uid, instance_uid, action_type, has_dataset)
    if trusted:
        command = _TEMPLATES.get(key)
        if command is not None:
            return command

    def build(i: int) -> DIMSEMessage:
        return NActionRQ(
            MessageID=i,
            RequestedSOPClassUID=class_uid,
            RequestedSOPInstanceUID=instance_uid,
            ActionTypeID=action_type,
        )

    return _templated(key, build) if trusted else _Command(build)


def _c_echo_build(i: int) -> DIMSEMessage:
    return CEchoRQ(MessageID=i, AffectedSOPClassUID=VERIFICATION)


class ServiceCalls:
    """``send_c_echo`` and ``send_n_*``; each waits for the response (DIMSE timeout)."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by Association
        ae: AESettings
        accepted_contexts: list[PresentationContext]
        _contexts: dict[int, PresentationContext]

        def _request(
            self,
            context: PresentationContext,
            command: _Command,
            dataset: Dataset | None,
        ) -> Awaitable[ReceivedMessage]: ...


    def _context_for(self, sop_class_uid: str, meta_uid: str | None, *, as_scp: bool = False
                     ) -> PresentationContext:
        """The accepted context for a request: the role's, else any of the class."""
        wanted = meta_uid or sop_class_uid
        fallback = None
        for ctx in self.accepted_contexts:
            if ctx.abstract_syntax == wanted:
                if (ctx.as_scp if as_scp else ctx.as_scu):
                    return ctx
                fallback = fallback or ctx
        if fallback is not None:
            return fallback
        raise ValueError(f"no accepted presentation context for {wanted}")

    def _result(self, received: ReceivedMessage, *, reply: bool
                ) -> tuple[Dataset, Dataset | None]:
        """A response's status, and its data set if ``reply`` and it succeeded."""
        msg: Any = received.message
        status = status_dataset(msg)
        if not reply or received.dataset is None:
            return status, None
        if not is_performed(int(msg.Status)):
            return status, None
        ctx = self._contexts[received.context_id]
        return status, decode_dataset(received.dataset, ctx.transfer_syntax,
                                      max_inflated_length=self.ae.maximum_dataset_size,
                                      max_inflate_ratio=self.ae.maximum_inflate_ratio)

    async def send_c_echo(self) -> Dataset:
        """C-ECHO: returns the status Dataset."""
        ctx = self._context_for(VERIFICATION, None)
        received = await self._request(ctx, _templated((CEchoRQ, False), _c_echo_build), None)
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
        command = _n_action_command(class_uid, instance_uid, action_type, dataset is not None)
        received = await self._request(ctx, command, dataset)
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
            _Command(lambda i: NCreateRQ(
                MessageID=i, AffectedSOPClassUID=class_uid, AffectedSOPInstanceUID=instance_uid
            )),
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
            _Command(lambda i: NDeleteRQ(
                MessageID=i, RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid
            )),
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
            _Command(lambda i: NEventReportRQ(
                MessageID=i,
                AffectedSOPClassUID=class_uid,
                AffectedSOPInstanceUID=instance_uid,
                EventTypeID=event_type,
            )),
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
            _Command(lambda i: NGetRQ(
                MessageID=i,
                RequestedSOPClassUID=class_uid,
                RequestedSOPInstanceUID=instance_uid,
                AttributeIdentifierList=tags,
            )),
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
            _Command(lambda i: NSetRQ(
                MessageID=i, RequestedSOPClassUID=class_uid, RequestedSOPInstanceUID=instance_uid
            )),
            dataset,
        )
        return self._result(received, reply=True)

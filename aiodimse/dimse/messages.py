"""DIMSE message classes (PS3.7 9.3 and 10.3) as frozen, keyword-only dataclasses.

Fields are named by DICOM keyword so that handler code reads like the standard
(``request.RequestedSOPInstanceUID``). A field without a default is mandatory on
the wire (usage M in PS3.7); optional ones are ``X | None = None``. The command
set codec (``commands.py``) derives its element layouts from these classes.

Values are validated when a message is built by the local user; the decoder builds
messages through a trusted path after checking the bytes itself, so that a peer's
harmless oddities (an over-long error comment, say) do not make decoding fail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, overload

__all__ = [
    "VERIFICATION_SOP_CLASS_UID",
    "DIMSEMessage",
    "CEchoRQ",
    "CEchoRSP",
    "CCancelRQ",
    "CStoreRQ",
    "CStoreRSP",
    "CFindRQ",
    "CFindRSP",
    "CGetRQ",
    "CGetRSP",
    "CMoveRQ",
    "CMoveRSP",
    "NEventReportRQ",
    "NEventReportRSP",
    "NGetRQ",
    "NGetRSP",
    "NSetRQ",
    "NSetRSP",
    "NActionRQ",
    "NActionRSP",
    "NCreateRQ",
    "NCreateRSP",
    "NDeleteRQ",
    "NDeleteRSP",
    "DIMSERequest",
    "DIMSEResponse",
    "MESSAGE_CLASSES",
    "ELEMENT_TAGS",
    "make_response",
    "build_trusted",
]

VERIFICATION_SOP_CLASS_UID = "1.2.840.10008.1.1"

# Group 0000 elements used by the supported messages: keyword -> (element, VR).
# The group is always 0000, so only the element number is kept.
ELEMENT_TAGS: dict[str, tuple[int, str]] = {
    "AffectedSOPClassUID": (0x0002, "UI"),
    "RequestedSOPClassUID": (0x0003, "UI"),
    "MessageID": (0x0110, "US"),
    "MessageIDBeingRespondedTo": (0x0120, "US"),
    "Status": (0x0900, "US"),
    "OffendingElement": (0x0901, "AT"),
    "ErrorComment": (0x0902, "LO"),
    "ErrorID": (0x0903, "US"),
    "AffectedSOPInstanceUID": (0x1000, "UI"),
    "RequestedSOPInstanceUID": (0x1001, "UI"),
    "EventTypeID": (0x1002, "US"),
    "AttributeIdentifierList": (0x1005, "AT"),
    "ActionTypeID": (0x1008, "US"),
    "MoveDestination": (0x0600, "AE"),
    "Priority": (0x0700, "US"),
    "NumberOfRemainingSuboperations": (0x1020, "US"),
    "NumberOfCompletedSuboperations": (0x1021, "US"),
    "NumberOfFailedSuboperations": (0x1022, "US"),
    "NumberOfWarningSuboperations": (0x1023, "US"),
    "MoveOriginatorApplicationEntityTitle": (0x1030, "AE"),
    "MoveOriginatorMessageID": (0x1031, "US"),
}

PRIORITY_MEDIUM, PRIORITY_HIGH, PRIORITY_LOW = 0x0000, 0x0001, 0x0002
"""Priority (0000,0700) values (PS3.7 9.3.1.1)."""

_MAX_LO = 64
_MAX_AE = 16


def _check_us(name: str, value: object) -> None:
    if type(value) is not int or not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be an int in 0..65535, not {value!r}")


def _check_ui(name: str, value: object) -> None:
    # Only what encoding needs: ASCII, no NUL, not empty. The UID grammar is not
    # enforced so that peers' odd UIDs can be echoed back in responses.
    if not isinstance(value, str) or not value or not value.isascii() or "\x00" in value:
        raise ValueError(f"{name} must be a non-empty ASCII UID string, not {value!r}")


def _check_lo(name: str, value: object) -> None:
    if (
        not isinstance(value, str)
        or len(value) > _MAX_LO
        or not value.isascii()
        or "\\" in value
        or not value.isprintable()
    ):
        raise ValueError(f"{name} must be printable ASCII, at most 64 chars, no '\\'")


def _check_ae(name: str, value: object) -> None:
    # PS3.5 6.2: the default repertoire without backslash or controls, 1..16, not spaces.
    if (
        not isinstance(value, str)
        or not value.strip(" ")
        or len(value) > _MAX_AE
        or not value.isascii()
        or "\\" in value
        or not value.isprintable()
    ):
        raise ValueError(f"{name} must be an AE title: 1-16 printable ASCII, no '\\'")


def _coerce_at(obj: DIMSEMessage, name: str, value: object) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a sequence of int tags, not {value!r}")
    tags = tuple(value)
    for tag in tags:
        if type(tag) is not int or not 0 <= tag <= 0xFFFFFFFF:
            raise ValueError(f"{name}: tag {tag!r} is not an int in 0..0xFFFFFFFF")
    if type(value) is not tuple:
        object.__setattr__(obj, name, tags)


class DIMSEMessage:
    """Base of every message class; ``command_field`` is PS3.7's CommandField."""

    __slots__ = ()

    command_field: ClassVar[int]
    is_request: ClassVar[bool]
    # Whether a data set may follow this command (PS3.7 10.3: N-GET-RQ and the
    # N-DELETE messages never carry one, nor do C-ECHO and C-CANCEL).
    dataset_allowed: ClassVar[bool] = True
    # (keyword, VR, mandatory) for every field; filled in by ``_register``.
    _field_specs: ClassVar[tuple[tuple[str, str, bool], ...]] = ()

    def __post_init__(self) -> None:
        for name, vr, mandatory in self._field_specs:
            value = getattr(self, name)
            if value is None:
                if mandatory:
                    raise ValueError(f"{type(self).__name__}.{name} is mandatory")
                continue
            if vr == "US":
                _check_us(name, value)
            elif vr == "UI":
                _check_ui(name, value)
            elif vr == "LO":
                _check_lo(name, value)
            elif vr == "AE":
                _check_ae(name, value)
            else:
                _coerce_at(self, name, value)


_M = TypeVar("_M", bound=DIMSEMessage)


def build_trusted(cls: type[_M], values: dict[str, object]) -> _M:
    """Build a message without validation, from values already known to be valid.

    For the hot path: values decoded by this library or copied from a decoded
    request skip ``__post_init__``; fields missing from ``values`` are None.
    """
    message = object.__new__(cls)
    get = values.get
    for name, setter in _SLOT_SETTERS[cls]:
        setter(message, get(name))
    return message


# Per class, (field name, slot descriptor __set__): filling a frozen dataclass through
# its slots is about twice as fast as object.__setattr__ per field.
_SLOT_SETTERS: dict[
    type[DIMSEMessage], tuple[tuple[str, Callable[[object, object], None]], ...]
] = {}


MESSAGE_CLASSES: dict[int, type[DIMSEMessage]] = {}
"""CommandField -> message class, for every supported message."""


def _register(
    command_field: int, *, dataset_allowed: bool = True
) -> Callable[[type[_M]], type[_M]]:
    """Record a message class's CommandField and derive its field specs."""

    def decorate(cls: type[_M]) -> type[_M]:
        specs = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            vr = ELEMENT_TAGS[f.name][1]
            specs.append((f.name, vr, f.default is dataclasses.MISSING))
        cls.command_field = command_field
        cls.is_request = not command_field & 0x8000
        cls.dataset_allowed = dataset_allowed
        cls._field_specs = tuple(specs)
        _SLOT_SETTERS[cls] = tuple((name, cls.__dict__[name].__set__) for name, _, _ in specs)
        MESSAGE_CLASSES[command_field] = cls
        return cls

    return decorate


# -- C-ECHO and C-CANCEL (PS3.7 9.3.5, 9.3.2.3) ------------------------------------


@_register(0x0030, dataset_allowed=False)
@dataclass(frozen=True, slots=True, kw_only=True)
class CEchoRQ(DIMSEMessage):
    """C-ECHO-RQ: verification request."""

    MessageID: int
    AffectedSOPClassUID: str


@_register(0x8030, dataset_allowed=False)
@dataclass(frozen=True, slots=True, kw_only=True)
class CEchoRSP(DIMSEMessage):
    """C-ECHO-RSP; Affected SOP Class UID is U(=) and may be missing from peers."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


@_register(0x0FFF, dataset_allowed=False)
@dataclass(frozen=True, slots=True, kw_only=True)
class CCancelRQ(DIMSEMessage):
    """C-CANCEL-RQ: cancels the request with MessageIDBeingRespondedTo."""

    MessageIDBeingRespondedTo: int


# -- DIMSE-C (PS3.7 9.3.1 to 9.3.4) --------------------------------------------------


@_register(0x0001)
@dataclass(frozen=True, slots=True, kw_only=True)
class CStoreRQ(DIMSEMessage):
    """C-STORE-RQ; the data set (the instance) is mandatory. The Move Originator
    fields are set when the store is a C-MOVE sub-operation."""

    MessageID: int
    AffectedSOPClassUID: str
    AffectedSOPInstanceUID: str
    Priority: int
    MoveOriginatorApplicationEntityTitle: str | None = None
    MoveOriginatorMessageID: int | None = None


@_register(0x8001, dataset_allowed=False)
@dataclass(frozen=True, slots=True, kw_only=True)
class CStoreRSP(DIMSEMessage):
    """C-STORE-RSP; the UIDs are U(=), so peers may leave them out."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    AffectedSOPInstanceUID: str | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


@_register(0x0020)
@dataclass(frozen=True, slots=True, kw_only=True)
class CFindRQ(DIMSEMessage):
    """C-FIND-RQ; the Identifier (the query) is mandatory."""

    MessageID: int
    AffectedSOPClassUID: str
    Priority: int


@_register(0x8020)
@dataclass(frozen=True, slots=True, kw_only=True)
class CFindRSP(DIMSEMessage):
    """C-FIND-RSP; a pending one carries a match as its Identifier, the final none."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


@_register(0x0010)
@dataclass(frozen=True, slots=True, kw_only=True)
class CGetRQ(DIMSEMessage):
    """C-GET-RQ; the Identifier (what to retrieve) is mandatory."""

    MessageID: int
    AffectedSOPClassUID: str
    Priority: int


@_register(0x8010)
@dataclass(frozen=True, slots=True, kw_only=True)
class CGetRSP(DIMSEMessage):
    """C-GET-RSP; sub-operation counts as PS3.4 C.4.3.1.3 conditions them; the
    Identifier, when present, lists the Failed SOP Instance UIDs."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    NumberOfRemainingSuboperations: int | None = None
    NumberOfCompletedSuboperations: int | None = None
    NumberOfFailedSuboperations: int | None = None
    NumberOfWarningSuboperations: int | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


@_register(0x0021)
@dataclass(frozen=True, slots=True, kw_only=True)
class CMoveRQ(DIMSEMessage):
    """C-MOVE-RQ: retrieve to ``MoveDestination``, an AE title the SCP knows."""

    MessageID: int
    AffectedSOPClassUID: str
    MoveDestination: str
    Priority: int


@_register(0x8021)
@dataclass(frozen=True, slots=True, kw_only=True)
class CMoveRSP(DIMSEMessage):
    """C-MOVE-RSP; the same fields as C-GET-RSP."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    NumberOfRemainingSuboperations: int | None = None
    NumberOfCompletedSuboperations: int | None = None
    NumberOfFailedSuboperations: int | None = None
    NumberOfWarningSuboperations: int | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


# -- DIMSE-N (PS3.7 10.3) -------------------------------------------------------------


@_register(0x0100)
@dataclass(frozen=True, slots=True, kw_only=True)
class NEventReportRQ(DIMSEMessage):
    """N-EVENT-REPORT-RQ; Event Information data set optional."""

    MessageID: int
    AffectedSOPClassUID: str
    AffectedSOPInstanceUID: str
    EventTypeID: int


@_register(0x8100)
@dataclass(frozen=True, slots=True, kw_only=True)
class NEventReportRSP(DIMSEMessage):
    """N-EVENT-REPORT-RSP; Event Reply data set conditional."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    AffectedSOPInstanceUID: str | None = None
    EventTypeID: int | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


@_register(0x0110, dataset_allowed=False)
@dataclass(frozen=True, slots=True, kw_only=True)
class NGetRQ(DIMSEMessage):
    """N-GET-RQ; no AttributeIdentifierList means all attributes. Never a data set."""

    MessageID: int
    RequestedSOPClassUID: str
    RequestedSOPInstanceUID: str
    AttributeIdentifierList: tuple[int, ...] | None = None


@_register(0x8110)
@dataclass(frozen=True, slots=True, kw_only=True)
class NGetRSP(DIMSEMessage):
    """N-GET-RSP; Attribute List data set conditional."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    AffectedSOPInstanceUID: str | None = None
    AttributeIdentifierList: tuple[int, ...] | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


@_register(0x0120)
@dataclass(frozen=True, slots=True, kw_only=True)
class NSetRQ(DIMSEMessage):
    """N-SET-RQ; the Modification List data set is mandatory."""

    MessageID: int
    RequestedSOPClassUID: str
    RequestedSOPInstanceUID: str


@_register(0x8120)
@dataclass(frozen=True, slots=True, kw_only=True)
class NSetRSP(DIMSEMessage):
    """N-SET-RSP; Attribute List data set optional."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    AffectedSOPInstanceUID: str | None = None
    AttributeIdentifierList: tuple[int, ...] | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


@_register(0x0130)
@dataclass(frozen=True, slots=True, kw_only=True)
class NActionRQ(DIMSEMessage):
    """N-ACTION-RQ; Action Information data set optional."""

    MessageID: int
    RequestedSOPClassUID: str
    RequestedSOPInstanceUID: str
    ActionTypeID: int


@_register(0x8130)
@dataclass(frozen=True, slots=True, kw_only=True)
class NActionRSP(DIMSEMessage):
    """N-ACTION-RSP; Action Reply data set conditional."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    AffectedSOPInstanceUID: str | None = None
    ActionTypeID: int | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


@_register(0x0140)
@dataclass(frozen=True, slots=True, kw_only=True)
class NCreateRQ(DIMSEMessage):
    """N-CREATE-RQ; without AffectedSOPInstanceUID the SCP assigns one."""

    MessageID: int
    AffectedSOPClassUID: str
    AffectedSOPInstanceUID: str | None = None


@_register(0x8140)
@dataclass(frozen=True, slots=True, kw_only=True)
class NCreateRSP(DIMSEMessage):
    """N-CREATE-RSP; carries the new instance UID when the request had none."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    AffectedSOPInstanceUID: str | None = None
    AttributeIdentifierList: tuple[int, ...] | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


@_register(0x0150, dataset_allowed=False)
@dataclass(frozen=True, slots=True, kw_only=True)
class NDeleteRQ(DIMSEMessage):
    """N-DELETE-RQ; never a data set."""

    MessageID: int
    RequestedSOPClassUID: str
    RequestedSOPInstanceUID: str


@_register(0x8150, dataset_allowed=False)
@dataclass(frozen=True, slots=True, kw_only=True)
class NDeleteRSP(DIMSEMessage):
    """N-DELETE-RSP; never a data set."""

    MessageIDBeingRespondedTo: int
    Status: int
    AffectedSOPClassUID: str | None = None
    AffectedSOPInstanceUID: str | None = None
    ErrorComment: str | None = None
    ErrorID: int | None = None
    OffendingElement: tuple[int, ...] | None = None


DIMSERequest = (
    CEchoRQ | CCancelRQ | CStoreRQ | CFindRQ | CGetRQ | CMoveRQ
    | NEventReportRQ | NGetRQ | NSetRQ | NActionRQ | NCreateRQ | NDeleteRQ
)
DIMSEResponse = (
    CEchoRSP | CStoreRSP | CFindRSP | CGetRSP | CMoveRSP
    | NEventReportRSP | NGetRSP | NSetRSP | NActionRSP | NCreateRSP | NDeleteRSP
)


# -- building responses ---------------------------------------------------------------


@overload
def make_response(
    request: CEchoRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
) -> CEchoRSP: ...
@overload
def make_response(
    request: CStoreRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
) -> CStoreRSP: ...
@overload
def make_response(
    request: CFindRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
) -> CFindRSP: ...
@overload
def make_response(
    request: CGetRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
    suboperations: tuple[int, int, int, int] | None = ...,
) -> CGetRSP: ...
@overload
def make_response(
    request: CMoveRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
    suboperations: tuple[int, int, int, int] | None = ...,
) -> CMoveRSP: ...
@overload
def make_response(
    request: NEventReportRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
) -> NEventReportRSP: ...
@overload
def make_response(
    request: NGetRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
    AttributeIdentifierList: tuple[int, ...] | None = ...,
) -> NGetRSP: ...
@overload
def make_response(
    request: NSetRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
    AttributeIdentifierList: tuple[int, ...] | None = ...,
) -> NSetRSP: ...
@overload
def make_response(
    request: NActionRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
) -> NActionRSP: ...
@overload
def make_response(
    request: NCreateRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
    AttributeIdentifierList: tuple[int, ...] | None = ...,
    AffectedSOPInstanceUID: str | None = ...,
) -> NCreateRSP: ...
@overload
def make_response(
    request: NDeleteRQ,
    status: int,
    *,
    ErrorComment: str | None = ...,
    ErrorID: int | None = ...,
    OffendingElement: tuple[int, ...] | None = ...,
) -> NDeleteRSP: ...
def make_response(
    request: DIMSEMessage,
    status: int,
    *,
    ErrorComment: str | None = None,
    ErrorID: int | None = None,
    OffendingElement: tuple[int, ...] | None = None,
    AttributeIdentifierList: tuple[int, ...] | None = None,
    AffectedSOPInstanceUID: str | None = None,
    suboperations: tuple[int, int, int, int] | None = None,
) -> DIMSEResponse:
    """Build the response to ``request``, echoing what PS3.7 says must be equal.

    MessageIDBeingRespondedTo is the request's MessageID; the Affected SOP Class
    and Instance UIDs are the request's Requested (or Affected) ones; Event Type
    ID and Action Type ID are copied. For N-CREATE, ``AffectedSOPInstanceUID``
    gives the instance the SCP created when the request carried none. For C-GET
    and C-MOVE, ``suboperations`` is (remaining, completed, failed, warning).
    Raises ``TypeError`` for C-CANCEL-RQ (it has no response) and for fields the
    response type does not have.
    """
    common: dict[str, Any] = {
        "ErrorComment": ErrorComment,
        "ErrorID": ErrorID,
        "OffendingElement": OffendingElement,
    }
    if AttributeIdentifierList is not None:
        common["AttributeIdentifierList"] = AttributeIdentifierList
    if AffectedSOPInstanceUID is not None and not isinstance(request, NCreateRQ):
        raise TypeError("AffectedSOPInstanceUID may only be given for N-CREATE")
    if suboperations is not None and not isinstance(request, (CGetRQ, CMoveRQ)):
        raise TypeError("suboperations may only be given for C-GET and C-MOVE")
    if isinstance(request, CStoreRQ):
        return CStoreRSP(
            MessageIDBeingRespondedTo=request.MessageID,
            Status=status,
            AffectedSOPClassUID=request.AffectedSOPClassUID,
            AffectedSOPInstanceUID=request.AffectedSOPInstanceUID,
            **common,
        )
    if isinstance(request, CFindRQ):
        return CFindRSP(
            MessageIDBeingRespondedTo=request.MessageID,
            Status=status,
            AffectedSOPClassUID=request.AffectedSOPClassUID,
            **common,
        )
    if isinstance(request, (CGetRQ, CMoveRQ)):
        if suboperations is not None:
            remaining, completed, failed, warning = suboperations
            common.update(
                NumberOfRemainingSuboperations=remaining,
                NumberOfCompletedSuboperations=completed,
                NumberOfFailedSuboperations=failed,
                NumberOfWarningSuboperations=warning,
            )
        retrieve_cls = CGetRSP if isinstance(request, CGetRQ) else CMoveRSP
        return retrieve_cls(
            MessageIDBeingRespondedTo=request.MessageID,
            Status=status,
            AffectedSOPClassUID=request.AffectedSOPClassUID,
            **common,
        )
    if isinstance(request, CEchoRQ):
        return CEchoRSP(
            MessageIDBeingRespondedTo=request.MessageID,
            Status=status,
            AffectedSOPClassUID=request.AffectedSOPClassUID,
            **common,
        )
    if isinstance(request, NEventReportRQ):
        return NEventReportRSP(
            MessageIDBeingRespondedTo=request.MessageID,
            Status=status,
            AffectedSOPClassUID=request.AffectedSOPClassUID,
            AffectedSOPInstanceUID=request.AffectedSOPInstanceUID,
            EventTypeID=request.EventTypeID,
            **common,
        )
    if isinstance(request, NActionRQ):
        return NActionRSP(
            MessageIDBeingRespondedTo=request.MessageID,
            Status=status,
            AffectedSOPClassUID=request.RequestedSOPClassUID,
            AffectedSOPInstanceUID=request.RequestedSOPInstanceUID,
            ActionTypeID=request.ActionTypeID,
            **common,
        )
    if isinstance(request, NCreateRQ):
        return NCreateRSP(
            MessageIDBeingRespondedTo=request.MessageID,
            Status=status,
            AffectedSOPClassUID=request.AffectedSOPClassUID,
            AffectedSOPInstanceUID=AffectedSOPInstanceUID or request.AffectedSOPInstanceUID,
            **common,
        )
    rsp_cls: type[NGetRSP | NSetRSP | NDeleteRSP]
    if isinstance(request, NGetRQ):
        rsp_cls = NGetRSP
    elif isinstance(request, NSetRQ):
        rsp_cls = NSetRSP
    elif isinstance(request, NDeleteRQ):
        rsp_cls = NDeleteRSP
    else:
        raise TypeError(f"{type(request).__name__} has no response message")
    return rsp_cls(
        MessageIDBeingRespondedTo=request.MessageID,
        Status=status,
        AffectedSOPClassUID=request.RequestedSOPClassUID,
        AffectedSOPInstanceUID=request.RequestedSOPInstanceUID,
        **common,
    )

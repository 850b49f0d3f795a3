"""Per-service rules for incoming requests: which event, which response, what fields.

Kept apart from the association so that the handler contract can be read (and
tested) without sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydicom import config as pydicom_config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from . import caches, evt
from .compat import READING_MODE_ATTRIBUTE, pydicom_layout_ok
from .datasets import encode_dataset
from .dimse.commands import forgo_shapes
from .dimse.messages import (
    CEchoRQ,
    CEchoRSP,
    CFindRSP,
    CGetRSP,
    CMoveRSP,
    CStoreRQ,
    CStoreRSP,
    DIMSEMessage,
    NActionRQ,
    NActionRSP,
    NCreateRQ,
    NCreateRSP,
    NDeleteRQ,
    NDeleteRSP,
    NEventReportRQ,
    NEventReportRSP,
    NGetRQ,
    NGetRSP,
    NSetRQ,
    NSetRSP,
    build_trusted,
)
from .fastds import (
    DeferredDataset,
    cached_tag,
    deferred_dataset,
    elements_by_stores,
    new_dataset,
    new_element,
    read_from_source,
)
from .logs import get_logger
from .outcome import Outcome, resolve
from .presentation import PresentationContext
from .status import PROCESSING_FAILURE, SUCCESS, is_performed

__all__ = [
    "RequestKind",
    "kind_of",
    "set_kind",
    "served_apart",
    "kind_for_type",
    "bare_status",
    "build_response",
    "failure_response",
    "status_dataset",
]

log = get_logger("aiodimse.handlers")


@dataclass(frozen=True, slots=True)
class RequestKind:
    """How one request type is served."""

    event: evt.EventType
    with_dataset: bool  # the handler returns (status, dataset), not a status alone
    default_result: object  # when no handler is bound
    failure_result: object  # when the handler raises
    # Whether the response depends on nothing but the request and a bare status, so
    # that an encoded one can be reused (not N-CREATE: it may need the handler's UID).
    reusable: bool = True
    # Whether its command sets' shapes are remembered and shared between associations
    # (dimse.commands.CommandDecoder). False for a kind whose messages are all unique
    # (C-STORE: a new SOP Instance UID each), which would only churn the shape tables;
    # without a shape its responses are never reused either (dimse.memo).
    shapes: bool = True
    # Serves the request in place of the association's usual path (C-STORE: checks,
    # files and clean-up of its own, store_scp.py): ``serve(assoc, received, kind, debug)``.
    # Such a kind is kept apart (``served_apart``): ``kind_for_type`` does not know it,
    # so the association's usual path hands its requests to serving.py's ``unserved``,
    # which calls ``serve``: the usual requests pay nothing for it.
    serve: Callable[[Any, Any, RequestKind, bool], None] | None = None


_FAILED_PAIR = (PROCESSING_FAILURE, None)

_KINDS: dict[type[DIMSEMessage], RequestKind] = {
    # Every DICOM node answers Verification: success when no handler is bound.
    CEchoRQ: RequestKind(evt.EVT_C_ECHO, False, SUCCESS, PROCESSING_FAILURE),
    NActionRQ: RequestKind(evt.EVT_N_ACTION, True, _FAILED_PAIR, _FAILED_PAIR),
    NCreateRQ: RequestKind(evt.EVT_N_CREATE, True, _FAILED_PAIR, _FAILED_PAIR, reusable=False),
    NDeleteRQ: RequestKind(evt.EVT_N_DELETE, False, PROCESSING_FAILURE, PROCESSING_FAILURE),
    NEventReportRQ: RequestKind(evt.EVT_N_EVENT_REPORT, True, _FAILED_PAIR, _FAILED_PAIR),
    NGetRQ: RequestKind(evt.EVT_N_GET, True, _FAILED_PAIR, _FAILED_PAIR),
    NSetRQ: RequestKind(evt.EVT_N_SET, True, _FAILED_PAIR, _FAILED_PAIR),
    # C-STORE: store_scp.py (it streams data sets to files and cleans up)
}

_RESPONSE_FOR: dict[int, type[DIMSEMessage]] = {
    0x0001: CStoreRSP,
    0x0010: CGetRSP,
    0x0020: CFindRSP,
    0x0021: CMoveRSP,
    0x0030: CEchoRSP,
    0x0100: NEventReportRSP,
    0x0110: NGetRSP,
    0x0120: NSetRSP,
    0x0130: NActionRSP,
    0x0140: NCreateRSP,
    0x0150: NDeleteRSP,
}

_FIELDS: dict[type[DIMSEMessage], frozenset[str]] = {
    cls: frozenset(name for name, _vr, _m in cls._field_specs) for cls in _RESPONSE_FOR.values()
}


_APART: dict[type[DIMSEMessage], RequestKind] = {}


def set_kind(message_class: type[DIMSEMessage], kind: RequestKind) -> None:
    """Serve requests of ``message_class`` by ``kind`` (replacing its rules, if any)."""
    table, other = (_KINDS, _APART) if kind.serve is None else (_APART, _KINDS)
    other.pop(message_class, None)
    table[message_class] = kind  # (a replaced kind keeps its place: tables list them)
    forgo_shapes(message_class, not kind.shapes)


def served_apart(message: object) -> RequestKind | None:
    """The kind of a request served by its own ``serve`` (C-STORE), else None."""
    return _APART.get(type(message))  # type: ignore[arg-type]


for _cls, _kind in _KINDS.items():
    forgo_shapes(_cls, not _kind.shapes)


def kind_of(message: object) -> RequestKind | None:
    """The serving rules of a request message; None for responses and C-CANCEL."""
    return _KINDS.get(type(message)) or _APART.get(type(message))  # type: ignore[arg-type]


kind_for_type: Callable[[type], RequestKind | None] = _KINDS.get
"""``kind_of`` by the message's type, without a Python call (the receive path)."""


def bare_status(kind: RequestKind, result: object) -> int | None:
    """The status of a result that is a bare status (no fields, no data set), else None.

    Such a result gives the same response as ``build_response`` would for any
    request of the same shape: the association may reuse an encoded one. None also
    for kinds whose response depends on more (``reusable`` False).
    """
    if kind.with_dataset:
        if type(result) is tuple and len(result) == 2 and result[1] is None:
            result = result[0]
        else:
            return None
    if type(result) is int and 0 <= result <= 0xFFFF and kind.reusable:
        return result
    return None


def _new_instance_uid(result: object, fields: dict[str, Any]) -> str | None:
    """N-CREATE without a requested UID: where the handler put the new one."""
    uid = fields.pop("AffectedSOPInstanceUID", None)
    if uid:
        return str(uid)
    if isinstance(result, (tuple, list)) and len(result) == 2:
        reply = result[1]
        if isinstance(reply, Dataset):
            if "AffectedSOPInstanceUID" in reply:
                uid = str(reply.AffectedSOPInstanceUID)
                del reply.AffectedSOPInstanceUID  # a command element, not an attribute
                return uid
            if "SOPInstanceUID" in reply:
                return str(reply.SOPInstanceUID)
    return None


def build_response(
    kind: RequestKind,
    request: Any,
    result: object,
    context: PresentationContext,
) -> tuple[DIMSEMessage, bytes | None]:
    """The response message and encoded data set for a handler's result."""
    ts = context.transfer_syntax

    def encode(ds: Dataset) -> bytes:
        return encode_dataset(ds, ts)

    outcome: Outcome = resolve(result, with_dataset=kind.with_dataset, encode=encode)
    status, data = outcome.status, outcome.dataset
    fields = dict(outcome.fields)  # Outcome may be shared: never mutate its fields
    rsp_cls = _RESPONSE_FOR[request.command_field]
    allowed = _FIELDS[rsp_cls]
    kw: dict[str, Any] = {
        "MessageIDBeingRespondedTo": request.MessageID,
        "Status": status,
    }
    ok = is_performed(status)
    if type(request) is NCreateRQ:
        kw["AffectedSOPClassUID"] = request.AffectedSOPClassUID
        if request.AffectedSOPInstanceUID:
            kw["AffectedSOPInstanceUID"] = request.AffectedSOPInstanceUID
            fields.pop("AffectedSOPInstanceUID", None)
        elif ok:
            new_uid = _new_instance_uid(result, fields)
            if new_uid is None:
                log.error(
                    "N-CREATE-RQ had no Affected SOP Instance UID and the handler gave none "
                    "(status dataset or reply AffectedSOPInstanceUID/SOPInstanceUID): 0x0110"
                )
                kw["Status"], fields, data = PROCESSING_FAILURE, {}, None
            else:
                kw["AffectedSOPInstanceUID"] = new_uid
                if data is not None and isinstance(result, (tuple, list)):
                    # re-encode without the command element; nothing left, nothing sent
                    data = encode(result[1]) if len(result[1]) else None
    elif type(request) in (CEchoRQ, NEventReportRQ, CStoreRQ):
        kw["AffectedSOPClassUID"] = request.AffectedSOPClassUID
        if type(request) is NEventReportRQ:
            kw["AffectedSOPInstanceUID"] = request.AffectedSOPInstanceUID
            kw["EventTypeID"] = request.EventTypeID
        elif type(request) is CStoreRQ:
            kw["AffectedSOPInstanceUID"] = request.AffectedSOPInstanceUID
    else:
        kw["AffectedSOPClassUID"] = request.RequestedSOPClassUID
        kw["AffectedSOPInstanceUID"] = request.RequestedSOPInstanceUID
        if type(request) is NActionRQ:
            kw["ActionTypeID"] = request.ActionTypeID
    for name, value in fields.items():
        if name in allowed and name not in kw:
            try:
                kw[name] = _field_value(name, value)
            except (TypeError, ValueError) as exc:
                log.error("status field %s=%r unusable (%s): left out", name, value, exc)
    if not rsp_cls.dataset_allowed:
        data = None
    if not fields:  # every value came from the decoded request or a checked status
        return build_trusted(rsp_cls, kw), data
    try:
        return rsp_cls(**kw), data
    except (TypeError, ValueError) as exc:  # e.g. an ErrorComment over 64 characters
        log.error("status fields unusable (%s): sent without them", exc)
    bare = {k: kw[k] for k in _BARE_RESPONSE_FIELDS if k in kw}
    try:
        return rsp_cls(Status=kw["Status"], **bare), data  # type: ignore[call-arg]
    except (TypeError, ValueError) as exc:
        log.error("cannot build the response (%s): answering 0x0110", exc)
        failed = rsp_cls(  # type: ignore[call-arg]
            MessageIDBeingRespondedTo=request.MessageID, Status=PROCESSING_FAILURE
        )
        return failed, None


_BARE_RESPONSE_FIELDS = (
    "MessageIDBeingRespondedTo",
    "AffectedSOPClassUID",
    "AffectedSOPInstanceUID",
    "ActionTypeID",
    "EventTypeID",
)


def _field_value(name: str, value: Any) -> Any:
    if name in ("OffendingElement", "AttributeIdentifierList"):
        # a pydicom multi-valued AT element is a MultiValue, not a list or tuple
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            return (int(value),)
        return tuple(int(v) for v in value)
    if name == "ErrorID":
        return int(value)
    return str(value)


def failure_response(command_field: int, message_id: int, status: int) -> DIMSEMessage | None:
    """A bare failure response to a request we could not decode, where one exists."""
    rsp_cls = _RESPONSE_FOR.get(command_field)
    if rsp_cls is None:
        return None
    return rsp_cls(MessageIDBeingRespondedTo=message_id, Status=status)  # type: ignore[call-arg]


# The status Dataset, built from ready values: US as int, UI as pydicom's UID
# (what pydicom's reader would give), in one pass without pydicom's validation; the
# rare text and tag-list fields go through pydicom's setattr. (keyword, tag, VR).
_STATUS_FAST = (
    ("AffectedSOPClassUID", 0x00000002, "UI"),
    ("Status", 0x00000900, "US"),
    ("ErrorID", 0x00000903, "US"),
    ("AffectedSOPInstanceUID", 0x00001000, "UI"),
    ("EventTypeID", 0x00001002, "US"),
    ("ActionTypeID", 0x00001008, "US"),
)
_STATUS_CONVERTED = ("ErrorComment", "OffendingElement", "AttributeIdentifierList")
# The tag objects keyword reads look up by (cached_tag's): an equal but distinct
# BaseTag key would make each such dict lookup call BaseTag.__eq__ in Python.
_TAGS = {tag: cached_tag(tag) for _kw, tag, _vr in _STATUS_FAST}

# UID objects by value, shared between status Datasets (a UID is an immutable str):
# a response's UIDs are mostly the same few, and a dict lookup is cheaper than making
# one. str.__new__, not UID(): the value was decoded and checked already. Bounded by
# entries and by bytes: a value longer than a UID may be (a peer's response can hold
# anything) is made each time, so the table holds under 200 kB.
_UIDS: dict[str, UID] = {}
_UIDS_MAX = 1024
_UID_MAX_CHARS = 64


def _new_uid(value: str) -> UID:
    uid: UID = str.__new__(UID, value)
    if len(value) > _UID_MAX_CHARS or not caches.enabled:
        return uid
    if len(_UIDS) >= _UIDS_MAX:
        _UIDS.clear()
    _UIDS[value] = uid
    return uid


caches.register("requests.uids", "module", lambda _: len(_UIDS), _UIDS.clear)


class StatusDataset(DeferredDataset):
    """A response's status Dataset, its elements made on first use.

    Most callers read ``Status`` alone, which is answered from the response.
    """


read_from_source(StatusDataset, "Status", 0x00000900, int)


def status_dataset(response: Any) -> Dataset:
    """The status Dataset that ``send_*`` returns, as pynetdicom's, from a response."""
    build = _STATUS_BUILDERS.get(type(response))
    if build is None:
        build = _status_builder(type(response))
    return build(response)


# Per message class, its status Dataset builder: straight-line code generated from the
# fields the class has (as the command encoders are), with each element made as
# ``new_element`` makes it (its attribute names read from one) but without a call each.
_STATUS_BUILDERS: dict[type, Callable[[Any], Dataset]] = {}


def _status_builder(cls: type) -> Callable[[Any], Dataset]:
    is_message = issubclass(cls, DIMSEMessage)
    converted: tuple[str, ...]
    if not issubclass(cls, DIMSEMessage):  # not a message class: look every keyword up
        fast = tuple((kw, _TAGS[tag], vr) for kw, tag, vr in _STATUS_FAST)
        converted = _STATUS_CONVERTED
    else:
        names = {name for name, _vr, _mandatory in cls._field_specs}
        fast = tuple((kw, _TAGS[tag], vr) for kw, tag, vr in _STATUS_FAST if kw in names)
        converted = tuple(kw for kw in _STATUS_CONVERTED if kw in names)

    def read(keyword: str) -> str:  # a message class has every field as an attribute
        return f"response.{keyword}" if is_message else f"getattr(response, {keyword!r}, None)"

    sample = new_element(_TAGS[0x00000900], "US", 0, 0).__dict__
    attrs = list(sample)
    namespace: dict[str, Any] = {
        f"_D_{name}": value
        for name, value in sample.items()
        if name not in ("tag", "VR", "validation_mode", "_value")
    }
    # shared by every element built: only immutable values may be
    assert all(v is None or type(v) in (bool, int, str) for v in namespace.values())
    namespace |= {
        "_new": object.__new__,
        "_set": object.__setattr__,
        "_DataElement": DataElement,
        "_uids": _UIDS,
        "_new_uid": _new_uid,
        "_config": pydicom_config,
        "new_dataset": new_dataset,
        "_new_element": new_element,
        "_deferred": deferred_dataset,
        "_StatusDataset": StatusDataset,
    }
    lines = [
        "def make(response):",
        # the attribute behind pydicom's property (a call less); None: its default
        f"    mode = _config.settings.{READING_MODE_ATTRIBUTE}",
        "    if mode is None:",
        "        mode = _config.settings.reading_validation_mode",
        "    elements = {}",
    ]
    by_stores = elements_by_stores()  # else each element gets a ready __dict__
    public = not pydicom_layout_ok()
    for i, (keyword, tag, vr) in enumerate(fast):
        namespace[f"_T{i}"] = tag
        fields = {"tag": f"_T{i}", "VR": repr(vr), "validation_mode": "mode", "_value": "v"}
        lines += [
            f"    v = {read(keyword)}",
            "    if v is not None:",
        ]
        if vr == "UI":
            lines += ["        v = _uids.get(v) or _new_uid(v)"]
        else:
            lines += ["        v = int(v)"]
        if public:  # a pydicom laid out otherwise (compat): its own constructor
            lines += [f"        e = _new_element(_T{i}, {vr!r}, v, mode)"]
        elif by_stores:
            lines += ["        e = _new(_DataElement)"]
            lines += [f"        e.{name} = {fields.get(name, '_D_' + name)}" for name in attrs]
        else:
            lines += ["        e = _new(_DataElement)"]
            body = ", ".join(f"{name!r}: {fields.get(name, '_D_' + name)}" for name in attrs)
            lines.append(f"        _set(e, '__dict__', {{{body}}})")
        lines.append(f"        elements[_T{i}] = e")
    lines += ["    return elements", "", "def build(response):"]
    deferred = ("return new_dataset(make(response))" if public  # built now, pydicom's way
                else "return _deferred(_StatusDataset, response, make)")
    if is_message and not converted:
        lines.append(f"    {deferred}")
    else:
        if is_message:  # made when first used, unless a field needs pydicom's setattr
            absent = " and ".join(f"{read(kw)} is None" for kw in converted)
            lines += [f"    if {absent}:", f"        {deferred}"]
        lines.append("    ds = new_dataset(make(response))")
        for keyword in converted:  # rare text and tag-list fields: pydicom's setattr
            lines += [
                f"    v = {read(keyword)}",
                "    if v is not None:",
                f"        setattr(ds, {keyword!r}, list(v) if isinstance(v, tuple) else v)",
            ]
        lines.append("    return ds")
    exec("\n".join(lines), namespace)  # the source is built above from constants only
    build: Callable[[Any], Dataset] = namespace["build"]
    if is_message:
        _STATUS_BUILDERS[cls] = build
    return build


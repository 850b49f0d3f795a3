"""Encode and decode the PDUs of PS3.8 9.3 (big-endian, items per PS3.8 9.3.2-9.3.3, PS3.7 D).

Decoding parses from a ``memoryview`` and never copies P-DATA-TF fragments: every
``PDV.data`` is a slice of the input. Malformed input raises only
``RemoteProtocolError`` carrying the A-ABORT reason to send (PS3.8 9.3.8); an
unencodable locally built PDU raises ``LocalProtocolError``.

Be liberal (PS3.8 9.3.1, D.2 note 2): reserved fields are sent as zero and never
tested, unknown items and sub-items are kept as ``UnknownItem`` and otherwise
ignored, unknown items inside a presentation context are skipped, and AE titles and
UIDs are stripped of padding on the way in. Only bit 0 of the protocol version is
significant; the decoder keeps the whole value and leaves the test to the upper layer,
which answers with A-ASSOCIATE-RJ rather than an abort.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from aiodimse.errors import LocalProtocolError, RemoteProtocolError

from .. import caches
from .codes import AbortReason, AbortSource, ItemType, PDUType
from .items import (
    AsyncOpsWindow,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UnknownItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from .pdus import (
    PDU,
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
)

__all__ = [
    "PDU_HEADER_SIZE",
    "PDV_HEADER_SIZE",
    "A_RELEASE_RQ_BYTES",
    "A_RELEASE_RP_BYTES",
    "encode_pdu",
    "encode_pdata",
    "encode_single_pdv",
    "decode_pdu",
    "decode_pdata_at",
    "MAX_FREE_PDVS",
]

PDU_HEADER_SIZE = 6
"""PDU type, reserved byte and the 4-byte PDU-length."""

PDV_HEADER_SIZE = 6
"""PDV item-length (4), presentation context ID and message control header."""

# ---------------------------------------------------------------------------
# Precompiled layouts (PS3.8 9.3; all big-endian)
# ---------------------------------------------------------------------------
_HEADER = struct.Struct(">BBI")  # PDU type, reserved, PDU-length
_ASSOC_FIXED = struct.Struct(">HH16s16s32s")  # version, reserved, called, calling, reserved
_ASSOC_FIXED_END = PDU_HEADER_SIZE + _ASSOC_FIXED.size  # 74: where the items start
_FIXED4 = struct.Struct(">BBBB")  # RJ/abort/release bodies: reserved + 3 code bytes
_ITEM_HEADER = struct.Struct(">BBH")  # item type, reserved (or sub-item version), length
_PC_HEADER = struct.Struct(">BBBB")  # context ID, reserved, result (AC) / reserved, reserved
_PDV_HEADER = struct.Struct(">IBB")  # item-length, context ID, message control header
MAX_FREE_PDVS = 16
"""PDVs any P-DATA-TF may hold; beyond them, one per 256 bytes of PDU (else a flood)."""
_PDV_SPAN_SHIFT = 8
_FLOOD_SOURCE = int(AbortSource.SERVICE_PROVIDER)
_FLOOD_REASON = int(AbortReason.NOT_SPECIFIED)  # a resource limit, not a malformed PDU
_SINGLE_PDV = struct.Struct(">BBIIBB")  # PDU header followed by one PDV header
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U16_PAIR = struct.Struct(">HH")
_BYTE_PAIR = struct.Struct(">BB")

_FIXED4_LENGTH = 4
_AE_PAD = b" \x00"
_TEXT_PAD = " \x00"

A_RELEASE_RQ_BYTES = _HEADER.pack(PDUType.A_RELEASE_RQ, 0, 4) + b"\x00\x00\x00\x00"
"""The whole A-RELEASE-RQ PDU; it has no variable part."""

A_RELEASE_RP_BYTES = _HEADER.pack(PDUType.A_RELEASE_RP, 0, 4) + b"\x00\x00\x00\x00"
"""The whole A-RELEASE-RP PDU; it has no variable part."""

_MAX_ITEM_LENGTH = 0xFFFF


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
def _invalid(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        message,
        abort_source=AbortSource.SERVICE_PROVIDER,
        abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
    )


def _unexpected(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        message,
        abort_source=AbortSource.SERVICE_PROVIDER,
        abort_reason=AbortReason.UNEXPECTED_PDU_PARAMETER,
    )


def _unrecognized(pdu_type: int) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"unrecognized PDU type 0x{pdu_type:02X}",
        abort_source=AbortSource.SERVICE_PROVIDER,
        abort_reason=AbortReason.UNRECOGNIZED_PDU,
    )


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------
def decode_pdu(data: bytes | bytearray | memoryview) -> PDU:
    """Decode one whole PDU, 6-byte header included.

    P-DATA-TF fragments are slices of ``data`` (which must therefore not be changed
    while they are in use).
    """
    if (type(data) is bytes and PDU_HEADER_SIZE <= len(data) <= _RQ_CACHED_MAX_BYTES
            and data[0] != _P_DATA_TF):  # (hashing data is not free)
        # The same bytes as before, whole: the same (frozen) PDU, found by one lookup.
        known = _DECODED_ALWAYS.get(data) or _RQ_DECODED.get(data)
        if known is not None:
            return known
    mv = memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    end = mv.nbytes
    if end < PDU_HEADER_SIZE:
        raise _invalid(f"PDU shorter than its header: {end} bytes")
    pdu_type, _, length = _HEADER.unpack_from(mv)
    if length != end - PDU_HEADER_SIZE:
        raise _invalid(f"PDU-length {length} but {end - PDU_HEADER_SIZE} bytes follow")
    if pdu_type == _P_DATA_TF:
        return decode_pdata_at(mv, 0, end)
    if pdu_type in _ASSOCIATE_TYPES:
        key = None
        if pdu_type == _A_ASSOCIATE_RQ and end <= _RQ_CACHED_MAX_BYTES:
            if type(data) is bytes:
                key = data  # looked up above already
            else:
                key = bytes(mv)
                known = _RQ_DECODED.get(key)
                if known is not None:
                    return known
        try:
            pdu = _decode_associate(mv, end, pdu_type == _A_ASSOCIATE_RQ)
        except (ValueError, struct.error) as exc:
            # Dataclass validation (e.g. an even context ID) and any bounds case the
            # explicit checks missed: the peer's bytes are at fault either way.
            raise _invalid(f"invalid A-ASSOCIATE parameter: {exc}") from exc
        # Never keep credentials around: a request with a user identity is not cached.
        if key is not None and pdu.user_information.user_identity_rq is None and caches.enabled:
            if len(_RQ_DECODED) >= _RQ_DECODED_SIZE:
                _RQ_DECODED.clear()
            _RQ_DECODED[key] = pdu
        return pdu
    if pdu_type in _FIXED4_TYPES:
        return _decode_fixed4(mv, pdu_type, length)
    raise _unrecognized(pdu_type)


_FIXED4_TYPES = frozenset(
    (PDUType.A_ASSOCIATE_RJ, PDUType.A_RELEASE_RQ, PDUType.A_RELEASE_RP, PDUType.A_ABORT)
)
# Item types as plain ints (see ul/states.py on reading enum members).
_ITEM_ABSTRACT_SYNTAX = int(ItemType.ABSTRACT_SYNTAX)
_ITEM_APPLICATION_CONTEXT = int(ItemType.APPLICATION_CONTEXT)
_ITEM_ASYNC_OPS_WINDOW = int(ItemType.ASYNC_OPS_WINDOW)
_ITEM_IMPLEMENTATION_CLASS_UID = int(ItemType.IMPLEMENTATION_CLASS_UID)
_ITEM_IMPLEMENTATION_VERSION_NAME = int(ItemType.IMPLEMENTATION_VERSION_NAME)
_ITEM_MAXIMUM_LENGTH = int(ItemType.MAXIMUM_LENGTH)
_ITEM_PRESENTATION_CONTEXT_AC = int(ItemType.PRESENTATION_CONTEXT_AC)
_ITEM_PRESENTATION_CONTEXT_RQ = int(ItemType.PRESENTATION_CONTEXT_RQ)
_ITEM_ROLE_SELECTION = int(ItemType.ROLE_SELECTION)
_ITEM_SOP_CLASS_COMMON_EXTENDED_NEGOTIATION = int(ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION)
_ITEM_SOP_CLASS_EXTENDED_NEGOTIATION = int(ItemType.SOP_CLASS_EXTENDED_NEGOTIATION)
_ITEM_TRANSFER_SYNTAX = int(ItemType.TRANSFER_SYNTAX)
_ITEM_USER_IDENTITY_AC = int(ItemType.USER_IDENTITY_AC)
_ITEM_USER_IDENTITY_RQ = int(ItemType.USER_IDENTITY_RQ)
_ITEM_USER_INFORMATION = int(ItemType.USER_INFORMATION)
# Plain ints: comparing with an IntEnum member costs a class attribute lookup each time.
_P_DATA_TF = int(PDUType.P_DATA_TF)
_A_ASSOCIATE_RQ = int(PDUType.A_ASSOCIATE_RQ)
# Decoding is a pure function of the bytes and the PDU is frozen: a server sees the
# same few requests again and again (each client sends the same bytes every time).
_RQ_DECODED: dict[bytes, PDU] = {}
_RQ_DECODED_SIZE = 256
_RQ_CACHED_MAX_BYTES = 8192  # so the cache holds at most 2 MiB, whatever peers send
_ASSOCIATE_TYPES = frozenset((int(PDUType.A_ASSOCIATE_RQ), int(PDUType.A_ASSOCIATE_AC)))


# A frozen dataclass's __init__ pays an object.__setattr__ call per field; on the hot
# path the decoder fills PDataTF's slot directly through its descriptor, and builds
# each PDV (a named tuple) with one tuple.__new__. The values are checked here first.
_new = object.__new__
_new_pdv = tuple.__new__
_set_pdata_pdvs = PDataTF.__dict__["pdvs"].__set__


def decode_pdata_at(mv: memoryview, start: int, end: int) -> PDataTF:
    """Decode the P-DATA-TF whose bytes are ``mv[start:end]``, header included.

    The hot path (the reader calls it on the received chunk without slicing out the
    PDU first): one header unpack and one slice per PDV, nothing copied. The caller
    has checked the PDU type and that the PDU-length matches ``end - start``.
    """
    offset = start + PDU_HEADER_SIZE
    pdata = _new(PDataTF)
    if end - offset >= PDV_HEADER_SIZE:
        length, context_id, control = _PDV_HEADER.unpack_from(mv, offset)
        if offset + 4 + length == end and length >= 2:
            # One PDV filling the PDU: the usual shape of a message fragment.
            _set_pdata_pdvs(pdata, (_new_pdv(PDV, (context_id, control, mv[offset + 6 : end])),))
            return pdata
    pdvs: list[PDV] = []
    append = pdvs.append
    unpack = _PDV_HEADER.unpack_from
    # Each PDV becomes ~250 bytes of objects: a PDU may hold MAX_FREE_PDVS, and one
    # more per PDV_SPAN bytes, so a flood of empty PDVs is refused before it costs
    # more than about the PDU's own size.
    left = MAX_FREE_PDVS + ((end - start) >> _PDV_SPAN_SHIFT)
    while offset < end:
        if end - offset < PDV_HEADER_SIZE:
            raise _invalid(f"truncated PDV header at offset {offset}")
        length, context_id, control = unpack(mv, offset)
        stop = offset + 4 + length
        if length < 2 or stop > end:
            raise _invalid(f"PDV item-length {length} at offset {offset} does not fit the PDU")
        left -= 1
        if left < 0:
            raise RemoteProtocolError(
                f"P-DATA-TF of {end - start} bytes holds more than"
                f" {MAX_FREE_PDVS + ((end - start) >> _PDV_SPAN_SHIFT)} PDVs: a PDV flood",
                abort_source=_FLOOD_SOURCE,
                abort_reason=_FLOOD_REASON,
            )
        append(_new_pdv(PDV, (context_id, control, mv[offset + 6 : stop])))
        offset = stop
    if not pdvs:
        raise _invalid("P-DATA-TF without any PDV")
    _set_pdata_pdvs(pdata, tuple(pdvs))
    return pdata


def _decode_fixed4(mv: memoryview, pdu_type: int, length: int) -> PDU:
    if length != _FIXED4_LENGTH:
        raise _invalid(f"PDU type 0x{pdu_type:02X} must have length 4, not {length}")
    if pdu_type == _A_RELEASE_RQ:
        return _RELEASE_RQ  # frozen and without fields: one will do
    if pdu_type == _A_RELEASE_RP:
        return _RELEASE_RP
    _, first, second, third = _FIXED4.unpack_from(mv, PDU_HEADER_SIZE)
    if pdu_type == _A_ASSOCIATE_RJ:
        return AAssociateRJ(result=first, source=second, reason=third)
    # A-ABORT: byte 8 is reserved too; source and reason are bytes 9 and 10.
    return AAbort(source=second, reason=third)


_A_RELEASE_RQ = int(PDUType.A_RELEASE_RQ)
_A_RELEASE_RP = int(PDUType.A_RELEASE_RP)
_A_ASSOCIATE_RJ = int(PDUType.A_ASSOCIATE_RJ)
_RELEASE_RQ = AReleaseRQ()
_RELEASE_RP = AReleaseRP()
# Whole PDUs with one meaning whatever the context (reserved bytes zero, as sent).
_DECODED_ALWAYS: dict[bytes, PDU] = {
    A_RELEASE_RQ_BYTES: _RELEASE_RQ,
    A_RELEASE_RP_BYTES: _RELEASE_RP,
}


def _items(mv: memoryview, offset: int, end: int, where: str) -> Iterator[tuple[int, int, int]]:
    """Yield (item type, body start, body stop) for the items in ``mv[offset:end]``."""
    while offset < end:
        if end - offset < _ITEM_HEADER.size:
            raise _invalid(f"truncated item header in {where}")
        item_type, _, length = _ITEM_HEADER.unpack_from(mv, offset)
        start = offset + _ITEM_HEADER.size
        offset = start + length
        if offset > end:
            raise _invalid(f"item 0x{item_type:02X} in {where} overruns it by {offset - end}")
        yield item_type, start, offset


def _text(mv: memoryview, start: int, stop: int) -> str:
    # latin-1 maps every byte, so a peer's stray non-ASCII byte cannot make this fail.
    return str(mv[start:stop], "latin-1")


def _uid(mv: memoryview, start: int, stop: int) -> str:
    # UIDs are not padded in these items (PS3.8 Annex F), but some peers pad anyway.
    return _text(mv, start, stop).strip(_TEXT_PAD)


def _ae_title(raw: bytes) -> str:
    return raw.strip(_AE_PAD).decode("latin-1")


def _prefixed(mv: memoryview, pos: int, end: int, what: str) -> tuple[int, int]:
    """Bounds of a field preceded by its uint16 length, starting at ``pos``."""
    if end - pos < 2:
        raise _invalid(f"{what}: length field missing")
    (length,) = _U16.unpack_from(mv, pos)
    start = pos + 2
    stop = start + length
    if stop > end:
        raise _invalid(f"{what}: field length {length} overruns the sub-item")
    return start, stop


def _decode_associate(mv: memoryview, end: int, is_rq: bool) -> AAssociateRQ | AAssociateAC:
    name = "A-ASSOCIATE-RQ" if is_rq else "A-ASSOCIATE-AC"
    if end < _ASSOC_FIXED_END:
        raise _invalid(f"{name} shorter than its fixed part")
    version, _, called, calling, _ = _ASSOC_FIXED.unpack_from(mv, PDU_HEADER_SIZE)
    context_type = _ITEM_PRESENTATION_CONTEXT_RQ if is_rq else _ITEM_PRESENTATION_CONTEXT_AC
    application_context: str | None = None
    contexts_rq: list[PresentationContextRQ] = []
    contexts_ac: list[PresentationContextAC] = []
    user_information: UserInformation | None = None
    unknown: list[UnknownItem] = []
    for item_type, start, stop in _items(mv, _ASSOC_FIXED_END, end, name):
        if item_type == _ITEM_APPLICATION_CONTEXT:
            if application_context is not None:
                raise _unexpected(f"{name} with a second application context item")
            application_context = _uid(mv, start, stop)
        elif item_type == context_type:
            if is_rq:
                contexts_rq.append(_decode_context_rq(mv, start, stop))
            else:
                contexts_ac.append(_decode_context_ac(mv, start, stop))
        elif item_type == _ITEM_USER_INFORMATION:
            if user_information is not None:
                raise _unexpected(f"{name} with a second user information item")
            user_information = _decode_user_information(mv, start, stop)
        else:
            # Unknown, or known but out of place: neither changes the meaning, so keep
            # it for the record and go on (PS3.8 9.3.1: unrecognized items are skipped).
            unknown.append(UnknownItem(item_type=item_type, data=bytes(mv[start:stop])))
    if application_context is None:
        raise _invalid(f"{name} without an application context item")
    if not (contexts_rq or contexts_ac):
        raise _invalid(f"{name} without a presentation context item")
    if user_information is None:
        raise _invalid(f"{name} without a user information item")
    if is_rq:
        return AAssociateRQ(
            called_ae_title=_ae_title(called),
            calling_ae_title=_ae_title(calling),
            presentation_contexts=tuple(contexts_rq),
            user_information=user_information,
            application_context_name=application_context,
            protocol_version=version,
            unknown_items=tuple(unknown),
        )
    return AAssociateAC(
        called_ae_title=_ae_title(called),
        calling_ae_title=_ae_title(calling),
        presentation_contexts=tuple(contexts_ac),
        user_information=user_information,
        application_context_name=application_context,
        protocol_version=version,
        unknown_items=tuple(unknown),
    )


def _decode_context_rq(mv: memoryview, start: int, stop: int) -> PresentationContextRQ:
    if stop - start < _PC_HEADER.size:
        raise _invalid("presentation context item shorter than 4 bytes")
    context_id = mv[start]
    abstract_syntax: str | None = None
    transfer_syntaxes: list[str] = []
    for item_type, a, b in _items(mv, start + _PC_HEADER.size, stop, "presentation context"):
        if item_type == _ITEM_ABSTRACT_SYNTAX:
            if abstract_syntax is not None:
                raise _unexpected(f"presentation context {context_id}: two abstract syntaxes")
            abstract_syntax = _uid(mv, a, b)
        elif item_type == _ITEM_TRANSFER_SYNTAX:
            transfer_syntaxes.append(_uid(mv, a, b))
        # Anything else inside a presentation context is skipped.
    if abstract_syntax is None:
        raise _invalid(f"presentation context {context_id} without an abstract syntax")
    if not transfer_syntaxes:
        raise _invalid(f"presentation context {context_id} without a transfer syntax")
    return PresentationContextRQ(
        context_id=context_id,
        abstract_syntax=abstract_syntax,
        transfer_syntaxes=tuple(transfer_syntaxes),
    )


def _decode_context_ac(mv: memoryview, start: int, stop: int) -> PresentationContextAC:
    if stop - start < _PC_HEADER.size:
        raise _invalid("presentation context item shorter than 4 bytes")
    context_id, _, result, _ = _PC_HEADER.unpack_from(mv, start)
    transfer_syntax: str | None = None
    for item_type, a, b in _items(mv, start + _PC_HEADER.size, stop, "presentation context"):
        if item_type == _ITEM_TRANSFER_SYNTAX:
            if transfer_syntax is not None:
                raise _unexpected(f"presentation context {context_id}: two transfer syntaxes")
            transfer_syntax = _uid(mv, a, b)
    return PresentationContextAC(
        context_id=context_id, result=result, transfer_syntax=transfer_syntax or ""
    )


def _decode_user_information(mv: memoryview, start: int, stop: int) -> UserInformation:
    maximum_length: int | None = None
    class_uid: str | None = None
    version_name: str | None = None
    window: AsyncOpsWindow | None = None
    roles: list[RoleSelection] = []
    extended: list[SOPClassExtendedNegotiation] = []
    common: list[SOPClassCommonExtendedNegotiation] = []
    identity_rq: UserIdentityRQ | None = None
    identity_ac: UserIdentityAC | None = None
    unknown: list[UnknownItem] = []
    seen: set[int] = set()
    for item_type, a, b in _items(mv, start, stop, "user information"):
        if item_type in _SINGLETON_SUB_ITEMS:
            # Two values for one parameter cannot be ignored: which one holds?
            if item_type in seen:
                raise _unexpected(f"user information with a second sub-item 0x{item_type:02X}")
            seen.add(item_type)
        if item_type == _ITEM_MAXIMUM_LENGTH:
            if b - a != 4:
                raise _invalid(f"maximum length sub-item of length {b - a}, not 4")
            (maximum_length,) = _U32.unpack_from(mv, a)
        elif item_type == _ITEM_IMPLEMENTATION_CLASS_UID:
            class_uid = _uid(mv, a, b)
        elif item_type == _ITEM_ASYNC_OPS_WINDOW:
            if b - a != 4:
                raise _invalid(f"asynchronous operations window of length {b - a}, not 4")
            invoked, performed = _U16_PAIR.unpack_from(mv, a)
            window = AsyncOpsWindow(max_invoked=invoked, max_performed=performed)
        elif item_type == _ITEM_ROLE_SELECTION:
            roles.append(_decode_role(mv, a, b))
        elif item_type == _ITEM_IMPLEMENTATION_VERSION_NAME:
            version_name = _text(mv, a, b).rstrip(_TEXT_PAD)
        elif item_type == _ITEM_SOP_CLASS_EXTENDED_NEGOTIATION:
            uid_start, uid_stop = _prefixed(mv, a, b, "SOP class extended negotiation")
            extended.append(
                SOPClassExtendedNegotiation(
                    sop_class_uid=_uid(mv, uid_start, uid_stop),
                    application_information=bytes(mv[uid_stop:b]),
                )
            )
        elif item_type == _ITEM_SOP_CLASS_COMMON_EXTENDED_NEGOTIATION:
            common.append(_decode_common_extended(mv, a, b))
        elif item_type == _ITEM_USER_IDENTITY_RQ:
            identity_rq = _decode_identity_rq(mv, a, b)
        elif item_type == _ITEM_USER_IDENTITY_AC:
            resp_start, resp_stop = _prefixed(mv, a, b, "user identity response")
            if resp_stop != b:
                raise _invalid("user identity response sub-item has trailing bytes")
            identity_ac = UserIdentityAC(server_response=bytes(mv[resp_start:resp_stop]))
        else:
            unknown.append(UnknownItem(item_type=item_type, data=bytes(mv[a:b])))
    return UserInformation(
        maximum_length=maximum_length,
        implementation_class_uid=class_uid or "",
        implementation_version_name=version_name,
        async_ops_window=window,
        role_selection=tuple(roles),
        extended_negotiation=tuple(extended),
        common_extended_negotiation=tuple(common),
        user_identity_rq=identity_rq,
        user_identity_ac=identity_ac,
        unknown=tuple(unknown),
    )


_SINGLETON_SUB_ITEMS = frozenset(
    (
        ItemType.MAXIMUM_LENGTH,
        ItemType.IMPLEMENTATION_CLASS_UID,
        ItemType.ASYNC_OPS_WINDOW,
        ItemType.IMPLEMENTATION_VERSION_NAME,
        ItemType.USER_IDENTITY_RQ,
        ItemType.USER_IDENTITY_AC,
    )
)


def _decode_role(mv: memoryview, start: int, stop: int) -> RoleSelection:
    uid_start, uid_stop = _prefixed(mv, start, stop, "role selection")
    if stop - uid_stop != 2:
        raise _invalid("role selection sub-item length does not match its UID length")
    scu, scp = _BYTE_PAIR.unpack_from(mv, uid_stop)
    # PS3.7 D.3.3.4 allows only 0 and 1; read any non-zero as 1 (be liberal).
    return RoleSelection(
        sop_class_uid=_uid(mv, uid_start, uid_stop), scu_role=scu != 0, scp_role=scp != 0
    )


def _decode_common_extended(
    mv: memoryview, start: int, stop: int
) -> SOPClassCommonExtendedNegotiation:
    what = "SOP class common extended negotiation"
    sop_start, sop_stop = _prefixed(mv, start, stop, what)
    svc_start, svc_stop = _prefixed(mv, sop_stop, stop, what)
    rel_start, rel_stop = _prefixed(mv, svc_stop, stop, what)
    if rel_stop != stop:
        raise _invalid(f"{what}: trailing bytes after the related SOP classes")
    related: list[str] = []
    pos = rel_start
    while pos < rel_stop:
        uid_start, pos = _prefixed(mv, pos, rel_stop, what)
        related.append(_uid(mv, uid_start, pos))
    return SOPClassCommonExtendedNegotiation(
        sop_class_uid=_uid(mv, sop_start, sop_stop),
        service_class_uid=_uid(mv, svc_start, svc_stop),
        related_general_sop_classes=tuple(related),
    )


def _decode_identity_rq(mv: memoryview, start: int, stop: int) -> UserIdentityRQ:
    if stop - start < 2:
        raise _invalid("user identity sub-item shorter than 2 bytes")
    identity_type, positive = _BYTE_PAIR.unpack_from(mv, start)
    prim_start, prim_stop = _prefixed(mv, start + 2, stop, "user identity")
    secondary = b""
    if prim_stop != stop:  # some peers omit the empty secondary field entirely
        sec_start, sec_stop = _prefixed(mv, prim_stop, stop, "user identity")
        if sec_stop != stop:
            raise _invalid("user identity sub-item has trailing bytes")
        # PS3.7 D.3.3.7.1: the secondary field means something only for type 2.
        if identity_type == 2:
            secondary = bytes(mv[sec_start:sec_stop])
    return UserIdentityRQ(
        identity_type=identity_type,
        positive_response_requested=positive != 0,
        primary_field=bytes(mv[prim_start:prim_stop]),
        secondary_field=secondary,
    )


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------
def encode_pdu(pdu: PDU) -> bytes:
    """Encode a whole PDU. Raises ``LocalProtocolError`` if a field cannot be encoded."""
    if isinstance(pdu, PDataTF):
        return encode_pdata(pdu.pdvs)
    try:
        if isinstance(pdu, AAssociateRQ | AAssociateAC):
            return _encode_associate(pdu)
        if isinstance(pdu, AReleaseRQ):
            return A_RELEASE_RQ_BYTES
        if isinstance(pdu, AReleaseRP):
            return A_RELEASE_RP_BYTES
        if isinstance(pdu, AAssociateRJ):
            body = _FIXED4.pack(0, pdu.result, pdu.source, pdu.reason)
            return _HEADER.pack(PDUType.A_ASSOCIATE_RJ, 0, 4) + body
        if isinstance(pdu, AAbort):
            body = _FIXED4.pack(0, 0, pdu.source, pdu.reason)
            return _HEADER.pack(PDUType.A_ABORT, 0, 4) + body
    except (struct.error, UnicodeEncodeError) as exc:
        raise LocalProtocolError(f"cannot encode {type(pdu).__name__}: {exc}") from exc
    raise LocalProtocolError(f"not a PDU: {pdu!r}")


def encode_pdata(pdvs: Iterable[PDV]) -> bytes:
    """Encode a P-DATA-TF from its PDVs with one join and no copy of the data but that."""
    parts: list[bytes | memoryview] = [b""]
    append = parts.append
    pack = _PDV_HEADER.pack
    total = 0
    try:
        for pdv in pdvs:
            data = pdv.data
            size = data.nbytes if type(data) is memoryview else len(data)
            append(pack(size + 2, pdv.context_id, pdv.control))
            append(data)
            total += size + PDV_HEADER_SIZE
        if not total:
            raise LocalProtocolError("a P-DATA-TF needs at least one PDV")
        parts[0] = _HEADER.pack(_P_DATA_TF, 0, total)
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode P-DATA-TF: {exc}") from exc
    return b"".join(parts)


def encode_single_pdv(context_id: int, control: int, data: bytes | memoryview) -> bytes:
    """Encode a P-DATA-TF holding one PDV: the usual shape of a message fragment."""
    size = data.nbytes if type(data) is memoryview else len(data)
    try:
        head = _SINGLE_PDV.pack(
            _P_DATA_TF, 0, size + PDV_HEADER_SIZE, size + 2, context_id, control
        )
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode P-DATA-TF: {exc}") from exc
    return b"".join((head, data))


def _item(item_type: int, body: bytes) -> bytes:
    if len(body) > _MAX_ITEM_LENGTH:
        raise LocalProtocolError(f"item 0x{item_type:02X} longer than 65535 bytes")
    return b"".join((_ITEM_HEADER.pack(item_type, 0, len(body)), body))


def _u16_prefixed(data: bytes) -> bytes:
    return b"".join((_U16.pack(len(data)), data))


def _ascii(text: str) -> bytes:
    return text.encode("latin-1")


def _encode_associate(pdu: AAssociateRQ | AAssociateAC) -> bytes:
    parts = [_item(_ITEM_APPLICATION_CONTEXT, _ascii(pdu.application_context_name))]
    if isinstance(pdu, AAssociateRQ):
        for rq in pdu.presentation_contexts:
            sub = [_PC_HEADER.pack(rq.context_id, 0, 0, 0)]
            sub.append(_item(_ITEM_ABSTRACT_SYNTAX, _ascii(rq.abstract_syntax)))
            sub.extend(_item(_ITEM_TRANSFER_SYNTAX, _ascii(ts)) for ts in rq.transfer_syntaxes)
            parts.append(_item(_ITEM_PRESENTATION_CONTEXT_RQ, b"".join(sub)))
    else:
        parts.append(_encode_contexts_ac(pdu.presentation_contexts))
    parts.append(_encode_user_information(pdu.user_information))
    parts.extend(_item(unknown.item_type, unknown.data) for unknown in pdu.unknown_items)
    fixed = _ASSOC_FIXED.pack(
        pdu.protocol_version,
        0,
        _ascii(pdu.called_ae_title).ljust(16),
        _ascii(pdu.calling_ae_title).ljust(16),
        b"",
    )
    variable = b"".join(parts)
    head = _HEADER.pack(pdu.pdu_type, 0, len(fixed) + len(variable))
    return b"".join((head, fixed, variable))


def _encode_contexts_ac(contexts: tuple[PresentationContextAC, ...]) -> bytes:
    parts = []
    for ac in contexts:
        body = _PC_HEADER.pack(ac.context_id, 0, ac.result, 0) + _item(
            _ITEM_TRANSFER_SYNTAX, _ascii(ac.transfer_syntax)
        )
        parts.append(_item(_ITEM_PRESENTATION_CONTEXT_AC, body))
    return b"".join(parts)


caches.register("wire.codec.associate_rq", "module", lambda _: len(_RQ_DECODED),
                _RQ_DECODED.clear)


def _encode_user_information(info: UserInformation) -> bytes:
    parts: list[bytes] = []
    if info.maximum_length is not None:
        parts.append(_item(_ITEM_MAXIMUM_LENGTH, _U32.pack(info.maximum_length)))
    if info.implementation_class_uid:
        uid = _ascii(info.implementation_class_uid)
        parts.append(_item(_ITEM_IMPLEMENTATION_CLASS_UID, uid))
    if info.async_ops_window is not None:
        window = info.async_ops_window
        body = _U16_PAIR.pack(window.max_invoked, window.max_performed)
        parts.append(_item(_ITEM_ASYNC_OPS_WINDOW, body))
    for role in info.role_selection:
        body = _u16_prefixed(_ascii(role.sop_class_uid)) + _BYTE_PAIR.pack(
            int(role.scu_role), int(role.scp_role)
        )
        parts.append(_item(_ITEM_ROLE_SELECTION, body))
    if info.implementation_version_name is not None:
        name = _ascii(info.implementation_version_name)
        parts.append(_item(_ITEM_IMPLEMENTATION_VERSION_NAME, name))
    for ext in info.extended_negotiation:
        body = _u16_prefixed(_ascii(ext.sop_class_uid)) + ext.application_information
        parts.append(_item(_ITEM_SOP_CLASS_EXTENDED_NEGOTIATION, body))
    for com in info.common_extended_negotiation:
        related = b"".join(_u16_prefixed(_ascii(uid)) for uid in com.related_general_sop_classes)
        body = b"".join(
            (
                _u16_prefixed(_ascii(com.sop_class_uid)),
                _u16_prefixed(_ascii(com.service_class_uid)),
                _u16_prefixed(related),
            )
        )
        # Byte 2 of this sub-item is the sub-item version, 0 (PS3.7 D.3.3.6.1).
        parts.append(_item(_ITEM_SOP_CLASS_COMMON_EXTENDED_NEGOTIATION, body))
    if info.user_identity_rq is not None:
        ident = info.user_identity_rq
        secondary = ident.secondary_field if ident.identity_type == 2 else b""
        body = b"".join(
            (
                _BYTE_PAIR.pack(ident.identity_type, int(ident.positive_response_requested)),
                _u16_prefixed(ident.primary_field),
                _u16_prefixed(secondary),
            )
        )
        parts.append(_item(_ITEM_USER_IDENTITY_RQ, body))
    if info.user_identity_ac is not None:
        body = _u16_prefixed(info.user_identity_ac.server_response)
        parts.append(_item(_ITEM_USER_IDENTITY_AC, body))
    parts.extend(_item(unknown.item_type, unknown.data) for unknown in info.unknown)
    return _item(_ITEM_USER_INFORMATION, b"".join(parts))

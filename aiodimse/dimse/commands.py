"""Command-set codec: group 0000 in Implicit VR Little Endian (PS3.7 6.3.1, 9.3, 10.3).

Hand-written because this is the hot path: each message class gets a precomputed
element layout in ascending tag order, values are packed with precompiled
``struct.Struct``s, and decoding is one pass over (tag, length) headers followed by
a conversion of just the elements the message class has.

Error contract of :func:`decode_command`: whatever the bytes, it raises only
:class:`CommandDecodeError` (a :class:`~aiodimse.errors.DIMSEError`). Its
``status`` is the failure to answer a request with:

* 0x0211 unrecognized operation: CommandField missing or unknown;
* 0x0120 missing attribute: a mandatory field of the message is absent or empty;
* 0x0212 mistyped argument: a known element has a wrong length or bad characters;
* 0x0117 invalid object instance: a request's Affected or Requested SOP Instance
  UID is not a UID (PS3.5 9.1: at most 64 characters, digits and dots, no empty
  component, no leading zero); responses are not judged (be liberal);
* 0x0110 processing failure: an N-SET-RQ without its data set (CommandDataSetType
  0x0101), as the Modification List is mandatory (PS3.7 10.3.5; 0x0120 is not
  among N-SET's statuses);
* 0x0110 processing failure: framing garbage (an element overrunning the buffer,
  a truncated header).

``message_id`` is the MessageID of a request, or the MessageIDBeingRespondedTo of a
response (so the association can fail the waiting request), when it could be
read; ``command_field`` likewise. A response to a request is possible only when
both are known and ``command_field`` is a request. ``has_dataset`` says whether a
data set follows (None when CommandDataSetType could not be read), so that a
reassembler knows where the message ends.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from aiodimse import caches
from aiodimse.errors import DIMSEError, LocalProtocolError

from .messages import ELEMENT_TAGS, MESSAGE_CLASSES, DIMSEMessage

__all__ = [
    "NO_DATASET",
    "DATASET_PRESENT",
    "DecodedCommand",
    "CommandDecodeError",
    "encode_command",
    "CommandTemplate",
    "command_template",
    "decode_command",
    "decode_command_raw",
    "CommandDecoder",
    "forgo_shapes",
    "is_valid_uid",
]

NO_DATASET = 0x0101
"""CommandDataSetType value meaning that no data set follows (PS3.7 E.1)."""
DATASET_PRESENT = 0x0001
"""CommandDataSetType value this library sends when a data set follows (as DCMTK)."""

_STATUS_PROCESSING_FAILURE = 0x0110
_STATUS_INVALID_OBJECT_INSTANCE = 0x0117
_STATUS_MISSING_ATTRIBUTE = 0x0120
_STATUS_UNRECOGNIZED_OPERATION = 0x0211
_STATUS_MISTYPED_ARGUMENT = 0x0212

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_HEADER = struct.Struct("<II")  # tag read as one LE uint32 (element<<16 | group), length
_US_ELEMENT = struct.Struct("<HHIH")  # group, element, length=2, value
_AT_VALUE = struct.Struct("<HH")

# Tags as read by _HEADER: (element << 16) | group, with group 0000.
_KEY_GROUP_LENGTH = 0x0000
_KEY_COMMAND_FIELD = 0x0100 << 16
_KEY_MESSAGE_ID = 0x0110 << 16
_KEY_RESPONDED_TO = 0x0120 << 16
_KEY_DATASET_TYPE = 0x0800 << 16
_KEY_AFFECTED_INSTANCE = 0x1000 << 16
_KEY_REQUESTED_INSTANCE = 0x1001 << 16

_KIND_US, _KIND_UI, _KIND_LO, _KIND_AT, _KIND_CONST, _KIND_DST, _KIND_ID = range(7)
# AE (a move destination or originator) is text padded with spaces, as LO is.
_KINDS = {"US": _KIND_US, "UI": _KIND_UI, "LO": _KIND_LO, "AE": _KIND_LO, "AT": _KIND_AT}


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedCommand:
    """A decoded command set: the message and whether a data set follows.

    ``data_set_type`` is the raw CommandDataSetType; 0x0101 means none follows and
    any other value (peers send 0x0000, 0x0001, 0x0102, 0x0202) means one does.
    """

    message: DIMSEMessage
    has_dataset: bool
    data_set_type: int


class CommandDecodeError(DIMSEError):
    """A command set could not be decoded into a valid message.

    Adds ``has_dataset`` (None when CommandDataSetType was unreadable) so that the
    reassembler can still find the end of the message before reporting.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        message_id: int | None = None,
        command_field: int | None = None,
        has_dataset: bool | None = None,
    ) -> None:
        super().__init__(message, status=status, message_id=message_id, command_field=command_field)
        self.has_dataset = has_dataset


# -- layouts -----------------------------------------------------------------------------

# (kind, field name, prefix): for US the prefix is unused (packed whole), for UI/LO/AT
# it is the 4-byte tag, for CONST it is the whole encoded element.
_Entry = tuple[int, str, bytes]
_ENCODE_LAYOUTS: dict[type[DIMSEMessage], tuple[_Entry, ...]] = {}
# (name, key, kind, element, mandatory) in field order, for decoding.
_DecodeSpec = tuple[tuple[str, int, int, int, bool], ...]
_DECODE_SPECS: dict[int, tuple[type[DIMSEMessage], _DecodeSpec]] = {}

_DST_NONE = _US_ELEMENT.pack(0, 0x0800, 2, NO_DATASET)
_DST_PRESENT = _US_ELEMENT.pack(0, 0x0800, 2, DATASET_PRESENT)


def _build_layouts() -> None:
    for command_field, cls in MESSAGE_CLASSES.items():
        entries: list[tuple[int, _Entry]] = [
            (0x0100, (_KIND_CONST, "", _US_ELEMENT.pack(0, 0x0100, 2, command_field))),
            (0x0800, (_KIND_DST, "", b"")),
        ]
        decode: list[tuple[str, int, int, int, bool]] = []
        for name, vr, mandatory in cls._field_specs:
            element = ELEMENT_TAGS[name][0]
            kind = _KINDS[vr]
            entries.append((element, (kind, name, _AT_VALUE.pack(0, element))))
            decode.append((name, element << 16, kind, element, mandatory))
        entries.sort(key=lambda e: e[0])
        _ENCODE_LAYOUTS[cls] = tuple(e for _, e in entries)
        _DECODE_SPECS[command_field] = (cls, tuple(decode))


_build_layouts()


# -- encoding ------------------------------------------------------------------------------


def encode_command(message: DIMSEMessage, *, has_dataset: bool) -> bytes:
    """Encode ``message`` as a command set, CommandGroupLength first.

    CommandDataSetType is 0x0001 when ``has_dataset`` else 0x0101. Raises
    LocalProtocolError when the message type never carries a data set (C-ECHO,
    C-CANCEL, N-GET-RQ, N-DELETE) but ``has_dataset`` is true.
    """
    encoder = _ENCODERS.get(type(message))
    if encoder is None:
        raise LocalProtocolError(f"not a DIMSE message: {message!r}")
    if has_dataset and not message.dataset_allowed:
        raise LocalProtocolError(f"{type(message).__name__} never carries a data set")
    return encoder(message, has_dataset)


# Each class gets its own encoder, generated from its layout at import: straight-line
# code with the tags and constant elements inlined, about 2.5x faster than walking the
# layout per call. UI elements are cached per tag by value (responses echo the same
# few SOP class and instance UIDs), bounded by _UI_CACHE_SIZE entries of at most
# _UI_CACHE_VALUE bytes each (a longer value, never a valid UID, is encoded each time):
# each field's cache holds about 64 KiB at most, whatever UIDs peers make us echo.
_UI_CACHE_SIZE = 256
_UI_CACHE_VALUE = 64
_pack_us = _US_ELEMENT.pack
_pack_u32 = _U32.pack
_UI_TABLES: list[dict[str, bytes]] = []  # every field's table, for the cache registry


def _ui_element(cache: dict[str, bytes], prefix: bytes, value: str) -> bytes:
    raw = value.encode("ascii")
    if len(raw) & 1:
        raw += b"\x00"
    element = prefix + _pack_u32(len(raw)) + raw
    if len(raw) > _UI_CACHE_VALUE or not caches.enabled:
        return element
    if len(cache) >= _UI_CACHE_SIZE:
        cache.clear()
    cache[value] = element
    return element


def _lo_element(prefix: bytes, value: str) -> bytes:
    raw = value.encode("ascii")
    if len(raw) & 1:
        raw += b" "
    return prefix + _pack_u32(len(raw)) + raw


def _at_element(prefix: bytes, value: tuple[int, ...]) -> bytes:
    # Each tag as two LE uint16, group first.
    raw = b"".join([_AT_VALUE.pack(t >> 16, t & 0xFFFF) for t in value])
    return prefix + _pack_u32(len(raw)) + raw


def _compile_encoder(
    cls: type[DIMSEMessage], layout: tuple[_Entry, ...]
) -> Callable[[DIMSEMessage, bool], bytes]:
    lines = ["def encode(message, has_dataset):", "    parts = []", "    append = parts.append"]
    namespace: dict[str, object] = {
        "_pack_us": _pack_us,
        "_pack_u32": _pack_u32,
        "_ui_element": _ui_element,
        "_lo_element": _lo_element,
        "_at_element": _at_element,
        "_DST_PRESENT": _DST_PRESENT,
        "_DST_NONE": _DST_NONE,
    }
    for kind, name, prefix in layout:
        if kind == _KIND_CONST:
            lines.append(f"    append({prefix!r})")
            continue
        if kind == _KIND_DST:
            lines.append("    append(_DST_PRESENT if has_dataset else _DST_NONE)")
            continue
        lines += [f"    value = message.{name}", "    if value is not None:"]
        if kind == _KIND_US:
            (element,) = _U16.unpack_from(prefix, 2)
            lines.append(f"        append(_pack_us(0, {element:#06x}, 2, value))")
        elif kind == _KIND_UI:
            cache = f"_cache_{name}"
            table: dict[str, bytes] = {}
            namespace[cache] = table
            _UI_TABLES.append(table)
            lines += [
                f"        element = {cache}.get(value)",
                f"        append(element or _ui_element({cache}, {prefix!r}, value))",
            ]
        elif kind == _KIND_LO:
            lines.append(f"        append(_lo_element({prefix!r}, value))")
        else:
            lines.append(f"        append(_at_element({prefix!r}, value))")
    lines += [
        '    body = b"".join(parts)',
        '    return b"\\x00\\x00\\x00\\x00\\x04\\x00\\x00\\x00" + _pack_u32(len(body)) + body',
    ]
    exec("\n".join(lines), namespace)  # the source is built above from constants only
    return cast("Callable[[DIMSEMessage, bool], bytes]", namespace["encode"])


_ENCODERS: dict[type[DIMSEMessage], Callable[[DIMSEMessage, bool], bytes]] = {
    cls: _compile_encoder(cls, layout) for cls, layout in _ENCODE_LAYOUTS.items()
}


def _clear_ui_tables() -> None:
    for table in _UI_TABLES:
        table.clear()


caches.register("dimse.commands.ui_elements", "module",
                lambda _: sum(len(t) for t in _UI_TABLES), _clear_ui_tables)


class CommandTemplate:
    """A request's encoded command set with its Message ID left open.

    An SCU sends the same request again and again with only the Message ID
    changed; filling two bytes in is cheaper than building, validating and
    encoding the message each time, and gives the same bytes (the Message ID is a
    fixed-length US and nothing else in the command set depends on it).
    """

    __slots__ = ("_prefix", "_suffix")

    def __init__(self, prefix: bytes, suffix: bytes) -> None:
        self._prefix = prefix
        self._suffix = suffix

    def encode(self, message_id: int) -> bytes:
        """``encode_command`` of the message with this Message ID."""
        return b"".join((self._prefix, _U16.pack(message_id), self._suffix))


def command_template(message: DIMSEMessage, *, has_dataset: bool) -> CommandTemplate:
    """The template of ``encode_command(message, has_dataset=...)``, any Message ID.

    Raises ValueError for a message without a MessageID (responses).
    """
    command = encode_command(message, has_dataset=has_dataset)
    pos = id_value_offset(command, 0, responded_to=False)
    if pos is None:
        raise ValueError(f"{type(message).__name__} has no MessageID")
    return CommandTemplate(command[:pos], command[pos + 2 :])


def id_value_offset(data: bytes, start: int, *, responded_to: bool) -> int | None:
    """Where the 2-byte value of MessageID (or MessageIDBeingRespondedTo) is.

    ``data[start:]`` is an encoded command set; None when the element is absent.
    """
    wanted = _KEY_RESPONDED_TO if responded_to else _KEY_MESSAGE_ID
    pos, end = start, len(data)
    while pos + 8 <= end:
        key, length = _HEADER.unpack_from(data, pos)
        pos += 8
        if key == wanted:
            return pos if length == 2 and pos + 2 <= end else None
        pos += length
    return None


# -- decoding ------------------------------------------------------------------------------


# Every element any message class has: key as read by _HEADER -> (keyword, kind).
_ELEMENTS: dict[int, tuple[str, int]] = {}
# Per class: (keyword, element, kind, mandatory) for the fields it has, in order.
_CLASS_FIELDS: dict[int, tuple[type[DIMSEMessage], tuple[tuple[str, int, int, bool], ...]]] = {}


def _build_decode_tables() -> None:
    for command_field, (cls, fields) in _DECODE_SPECS.items():
        for name, key, kind, _element, _mandatory in fields:
            _ELEMENTS[key] = (name, kind)
        _CLASS_FIELDS[command_field] = (
            cls,
            tuple((name, elem, kind, mand) for name, _k, kind, elem, mand in fields),
        )
    _ELEMENTS[_KEY_COMMAND_FIELD] = ("CommandField", _KIND_US)
    _ELEMENTS[_KEY_DATASET_TYPE] = ("CommandDataSetType", _KIND_US)


_build_decode_tables()

# The lean decoder's tables: key -> kind for every element, and per CommandField the
# class with (key, slot setter, mandatory) per field. Slot descriptors' __set__ fill a
# frozen dataclass about three times faster than object.__setattr__ or __init__.
_new = object.__new__
# The two Message ID elements (US) have their own kind: the decoder notes where their
# values are, for CommandDecoder's shape check.
_KIND_BY_KEY: dict[int, int] = {key: kind for key, (_name, kind) in _ELEMENTS.items()}
_KIND_BY_KEY[_KEY_MESSAGE_ID] = _KIND_BY_KEY[_KEY_RESPONDED_TO] = _KIND_ID
_Setter = Callable[[object, object], None]
_FastField = tuple[int, _Setter, bool]

# A UID as PS3.5 9.1 defines one: digits and dots, components without a leading
# zero, at most 64 characters (the length is tested apart).
_UID_RE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
_uid_match = _UID_RE.fullmatch
UID_MAX_LENGTH = 64


def is_valid_uid(value: str) -> bool:
    """Whether ``value`` is a UID by PS3.5 9.1 (no padding: the decoder strips it)."""
    return len(value) <= UID_MAX_LENGTH and _uid_match(value) is not None


# Requests whose command set the decoder judges beyond its elements' types: the
# element holding the SOP Instance UID the request is about (a peer's instance UID
# reaches handlers, stores and logs, so one that is no UID is answered 0x0117
# before any handler runs), and whether a data set must follow. Only command sets
# decoded in full pay for it: a shape learned (see CommandDecoder) was judged once.
_JUDGED: dict[int, tuple[int, bool]] = {
    0x0001: (_KEY_AFFECTED_INSTANCE, True),  # C-STORE-RQ: the instance is M
    0x0100: (_KEY_AFFECTED_INSTANCE, False),  # N-EVENT-REPORT-RQ
    0x0110: (_KEY_REQUESTED_INSTANCE, False),  # N-GET-RQ
    0x0120: (_KEY_REQUESTED_INSTANCE, True),  # N-SET-RQ: the Modification List is M
    0x0130: (_KEY_REQUESTED_INSTANCE, False),  # N-ACTION-RQ
    0x0140: (_KEY_AFFECTED_INSTANCE, False),  # N-CREATE-RQ (may be absent: the SCP assigns)
    0x0150: (_KEY_REQUESTED_INSTANCE, False),  # N-DELETE-RQ
}


def _judge(command_field: object, values: Callable[[int], object], data_set_type: object
           ) -> tuple[str, int] | None:
    """(why, status) when a decoded request must be refused for its values, else None."""
    rule = _JUDGED.get(command_field)  # type: ignore[call-overload]
    if rule is None:
        return None
    key, needs_dataset = rule
    uid = values(key)
    if isinstance(uid, str) and not is_valid_uid(uid):
        shown = repr(uid[:64]) + ("..." if len(uid) > 64 else "")
        return (f"SOP Instance UID (0000,{key >> 16:04X}) {shown} is not a valid UID "
                f"({len(uid)} characters)", _STATUS_INVALID_OBJECT_INSTANCE)
    if needs_dataset and data_set_type == NO_DATASET:
        what = ("C-STORE-RQ without its data set" if command_field == 0x0001
                else "N-SET-RQ without its Modification List")
        return (f"{what} (CommandDataSetType 0x0101)", _STATUS_PROCESSING_FAILURE)
    return None


# Per CommandField: class, fields, the key of its ID field (MessageID or
# MessageIDBeingRespondedTo: every class has exactly one of them), and whether it is
# judged (_JUDGED).
_FAST_CLASSES: dict[object, tuple[type[DIMSEMessage], tuple[_FastField, ...], int, bool]] = {
    command_field: (
        cls,
        tuple(
            (element << 16, cls.__dict__[name].__set__, mandatory)
            for name, element, _kind, mandatory in fields
        ),
        _KEY_MESSAGE_ID if "MessageID" in cls.__dict__ else _KEY_RESPONDED_TO,
        command_field in _JUDGED,
    )
    for command_field, (cls, fields) in _CLASS_FIELDS.items()
}
def _compile_copier(cls: type[DIMSEMessage], names: tuple[str, ...]
                    ) -> Callable[[DIMSEMessage, int], DIMSEMessage]:
    """``copy(last, new_id)``: a message of ``cls`` equal to ``last`` but for its ID.

    Generated straight-line code (one slot read and one slot write per field), for
    CommandDecoder's repeated shapes.
    """
    id_name = "MessageID" if "MessageID" in names else "MessageIDBeingRespondedTo"
    namespace: dict[str, object] = {"_new": _new, "_cls": cls}
    lines = ["def copy(last, new_id):", "    message = _new(_cls)"]
    for i, name in enumerate(names):
        namespace[f"_set{i}"] = cls.__dict__[name].__set__
        value = "new_id" if name == id_name else f"last.{name}"
        lines.append(f"    _set{i}(message, {value})")
    lines.append("    return message")
    exec("\n".join(lines), namespace)  # the source is built from field names only
    return cast("Callable[[DIMSEMessage, int], DIMSEMessage]", namespace["copy"])


_COPIERS: dict[type[DIMSEMessage], Callable[[DIMSEMessage, int], DIMSEMessage]] = {
    cls: _compile_copier(cls, tuple(name for name, _element, _kind, _mandatory in fields))
    for cls, fields in _CLASS_FIELDS.values()
}
_set_decoded_message = DecodedCommand.__dict__["message"].__set__
_set_decoded_has_dataset = DecodedCommand.__dict__["has_dataset"].__set__
_set_decoded_data_set_type = DecodedCommand.__dict__["data_set_type"].__set__


def decode_command(data: bytes | bytearray | memoryview) -> DecodedCommand:
    """Decode one whole command set; see the module docstring for the errors.

    Unknown and retired group-0000 elements, elements of other groups, and elements
    that do not belong to the message type are ignored; so is the value of
    CommandGroupLength (peers get it wrong and the PDV framing already delimits the
    command set). UID and LO values lose trailing NUL and space padding; a
    zero-length value counts as absent.
    """
    message, data_set_type = decode_command_raw(data)
    decoded = _new(DecodedCommand)
    _set_decoded_message(decoded, message)
    _set_decoded_has_dataset(decoded, data_set_type != NO_DATASET)
    _set_decoded_data_set_type(decoded, data_set_type)
    return decoded


def decode_command_raw(data: bytes | bytearray | memoryview) -> tuple[DIMSEMessage, int]:
    """``decode_command`` without the wrapper: (message, CommandDataSetType).

    For the reassembler's hot path. A well-formed command set takes the lean pass of
    ``_decode_fast``; anything it does not vouch for is decoded again by
    ``_decode_exact``, the reference decoder, which raises the exact errors.
    """
    if type(data) is not bytes:
        data = bytes(data)
    result = _decode_fast(data)
    if result is None:
        return _decode_exact(data)
    return result[0], result[1]


class CommandDecoder:
    """``decode_command_raw`` that remembers the shape of the last command set.

    A peer sends the same command set again and again but for its Message ID (C-ECHO,
    N-ACTION on the Storage Commitment instance, N-EVENT-REPORT, ...). When a command
    set equals the last one but for the two bytes of that ID's value, decoding it
    would give the last message with the new ID; that is what is built, without a
    pass over the bytes. One per association (the reassembler owns it).

    After each decode, ``shape`` is the message that defines the command set's shape:
    the same object for every command set equal to it but for the ID, a new one when
    the shape changes, and None when the command set was not decoded on the fast
    path. Two messages with the same ``shape`` differ in their ID only, which lets
    the association reuse the encoded response of the last one.

    Decoders share the shapes they learn through a bounded table (by command set
    length), so a new association's first request of a known shape is not decoded
    either, and gets the same ``shape`` object as on the other associations.
    """

    __slots__ = ("_data_set_type", "_id_pos", "_message", "_prefix", "_size", "_suffix", "shape")

    def __init__(self) -> None:
        self._size = -1  # no shape yet
        self._prefix = self._suffix = b""
        self._id_pos = 0
        self._message: DIMSEMessage | None = None
        self._data_set_type = 0
        self.shape: DIMSEMessage | None = None

    def holds(self) -> bool:
        """Whether a shape is remembered."""
        return self._message is not None

    def decode(self, data: bytes | bytearray | memoryview) -> tuple[DIMSEMessage, int]:
        """Decode ``data`` as ``decode_command_raw`` does (same result, same errors)."""
        if type(data) is not bytes:
            data = bytes(data)
        last = self._message
        if (
            len(data) == self._size
            and last is not None
            and data.startswith(self._prefix)
            and data.endswith(self._suffix)
        ):
            pos = self._id_pos
            self.shape = last
            return _COPIERS[type(last)](last, data[pos] | data[pos + 1] << 8), self._data_set_type
        known = _SHAPES.get(len(data))
        if known is not None:
            for shape in known:
                prefix, suffix = shape[0], shape[1]
                if data.startswith(prefix) and data.endswith(suffix):
                    (self._prefix, self._suffix, self._id_pos, last,
                     self._data_set_type) = shape
                    self._size = len(data)
                    self._message = self.shape = last
                    pos = self._id_pos
                    message = _COPIERS[type(last)](last, data[pos] | data[pos + 1] << 8)
                    return message, self._data_set_type
        result = _decode_fast(data)
        if result is None:
            self.shape = None
            return _decode_exact(data)
        message, data_set_type, pos = result
        # Not remembered: a long command set (shapes hold their bytes), a command
        # whose request kind opts out (each message unique), or caches off.
        if (len(data) > SHAPE_MAX_BYTES or type(message) in _UNSHAPED
                or not caches.enabled):
            self.shape = None
            return message, data_set_type
        self.shape = message
        self._size = len(data)
        self._prefix = data[:pos]
        self._suffix = data[pos + 2 :]
        self._id_pos = pos
        self._message = message
        self._data_set_type = data_set_type
        _share((self._prefix, self._suffix, pos, message, data_set_type), len(data))
        return message, data_set_type


_Shape = tuple[bytes, bytes, int, DIMSEMessage, int]  # prefix, suffix, ID offset, message, type
_SHAPES: dict[int, list[_Shape]] = {}
SHAPES_PER_LENGTH = 8
"""Most shapes shared per command set length (the oldest goes first)."""
SHAPE_LENGTHS = 256
"""Most command set lengths with shared shapes (the table is emptied when full)."""
SHAPE_MAX_BYTES = 1024
"""Longest command set whose shape is remembered (ours are 60 to 200 bytes): with
the two limits above, the shared table holds at most 2 MiB of peers' bytes."""


_UNSHAPED: set[type[DIMSEMessage]] = set()


def forgo_shapes(cls: type[DIMSEMessage], forgo: bool = True) -> None:
    """Never remember or share the shape of ``cls``'s command sets (or again, if not
    ``forgo``): for messages that are all unique (a C-STORE's SOP Instance UID), which
    would only churn the tables. Without a shape the response is not reused either.
    ``requests.RequestKind.shapes`` is where a request kind says so.
    """
    if forgo:
        _UNSHAPED.add(cls)
        for size, known in list(_SHAPES.items()):
            known[:] = [shape for shape in known if type(shape[3]) is not cls]
            if not known:
                del _SHAPES[size]
    else:
        _UNSHAPED.discard(cls)


caches.register("dimse.commands.shapes", "module",
                lambda _: sum(len(v) for v in _SHAPES.values()), _SHAPES.clear)


def _share(shape: _Shape, size: int) -> None:
    known = _SHAPES.get(size)
    if known is None:
        if len(_SHAPES) >= SHAPE_LENGTHS:
            _SHAPES.clear()
        known = _SHAPES[size] = []
    elif len(known) >= SHAPES_PER_LENGTH:
        del known[0]
    known.append(shape)


def _decode_fast(data: bytes) -> tuple[DIMSEMessage, int, int] | None:
    """Decode a well-formed command set in one lean pass, or return None.

    None means "not vouched for": a framing problem, an AT element, a wrong length,
    an empty or non-ASCII value, an unknown CommandField, a missing mandatory field.
    Those rare cases (and their error messages) are left to ``_decode_exact``, which
    gives the same result for everything this function accepts. The third value is
    the offset of the message's ID value (the last one, if repeated).
    """
    end = len(data)
    pos = 0
    mid_pos = rsp_pos = -1
    values: dict[int, int | str] = {}
    unpack = _HEADER.unpack_from
    kinds = _KIND_BY_KEY
    while pos < end:
        if end - pos < 8:
            return None
        key, length = unpack(data, pos)
        pos += 8
        stop = pos + length
        if stop > end:
            return None
        kind = kinds.get(key)
        if kind is not None:
            if kind == _KIND_US:
                if length != 2:
                    return None
                values[key] = data[pos] | data[pos + 1] << 8
            elif kind == _KIND_ID:
                if length != 2:
                    return None
                values[key] = data[pos] | data[pos + 1] << 8
                if key == _KEY_MESSAGE_ID:
                    mid_pos = pos
                else:
                    rsp_pos = pos
            elif kind == _KIND_AT:
                return None
            else:
                try:
                    text = data[pos:stop].decode("ascii")
                except UnicodeDecodeError:
                    return None
                text = text.rstrip("\x00 ") if kind == _KIND_UI else text.strip("\x00 ")
                if not text:
                    return None
                values[key] = text
        pos = stop
    get = values.get
    data_set_type = get(_KEY_DATASET_TYPE)
    spec = _FAST_CLASSES.get(get(_KEY_COMMAND_FIELD))
    if spec is None or data_set_type is None:
        return None
    cls, fields, id_key, judged = spec
    if judged and _judge(get(_KEY_COMMAND_FIELD), get, data_set_type) is not None:
        return None  # refused: _decode_exact raises the error
    message = _new(cls)
    for key, setter, mandatory in fields:
        value = get(key)
        if value is None and mandatory:
            return None
        setter(message, value)
    id_pos = mid_pos if id_key == _KEY_MESSAGE_ID else rsp_pos
    return message, data_set_type, id_pos  # type: ignore[return-value]


def _decode_exact(data: bytes) -> tuple[DIMSEMessage, int]:
    """The reference decoder: every check in order, and the exact error contract."""
    end = len(data)
    pos = 0
    values: dict[str, object] = {}
    bad: dict[str, int] | None = None  # keyword -> length, for mistyped values
    unpack = _HEADER.unpack_from
    elements = _ELEMENTS
    framing: str | None = None
    # One pass: convert the known elements as they come.
    while pos < end:
        if pos + 8 > end:
            framing = f"truncated element header at offset {pos}"
            break
        key, length = unpack(data, pos)
        pos += 8
        if length > end - pos:
            framing = f"element ({key & 0xFFFF:04X},{key >> 16:04X}) overruns the command set"
            break
        spec = elements.get(key)
        if spec is not None:
            name, kind = spec
            if not length:
                values.pop(name, None)
            elif kind == _KIND_US:
                if length == 2:
                    values[name] = data[pos] | data[pos + 1] << 8
                else:
                    values.pop(name, None)
                    bad = bad or {}
                    bad[name] = length
            elif kind in (_KIND_UI, _KIND_LO):
                raw = data[pos : pos + length]
                try:
                    text = raw.decode("ascii")
                except UnicodeDecodeError:
                    if kind == _KIND_UI:
                        values.pop(name, None)
                        bad = bad or {}
                        bad[name] = length
                        pos += length
                        continue
                    # LO in the default repertoire; be liberal with a peer's comment.
                    text = raw.decode("ascii", "replace").replace("\ufffd", "?")
                text = text.rstrip("\x00 ") if kind == _KIND_UI else text.strip("\x00 ")
                if text:
                    values[name] = text
                else:
                    values.pop(name, None)
            elif length & 3:  # AT
                values.pop(name, None)
                bad = bad or {}
                bad[name] = length
            else:
                values[name] = tuple(
                    (g << 16) | e for g, e in _AT_VALUE.iter_unpack(data[pos : pos + length])
                )
        pos += length

    # What we can learn for the error report comes first.
    command_field = cast("int | None", values.get("CommandField"))
    data_set_type = cast("int | None", values.get("CommandDataSetType"))
    is_response = command_field is not None and bool(command_field & 0x8000)
    message_id = cast(
        "int | None", values.get("MessageIDBeingRespondedTo" if is_response else "MessageID")
    )
    has_dataset = None if data_set_type is None else data_set_type != NO_DATASET

    def fail(text: str, status: int) -> CommandDecodeError:
        return CommandDecodeError(
            text,
            status=status,
            message_id=message_id,
            command_field=command_field,
            has_dataset=has_dataset,
        )

    if framing is not None:
        raise fail(framing, _STATUS_PROCESSING_FAILURE)
    if command_field is None:
        raise fail("CommandField (0000,0100) missing or malformed", _STATUS_UNRECOGNIZED_OPERATION)
    class_spec = _CLASS_FIELDS.get(command_field)
    if class_spec is None:
        raise fail(
            f"unsupported CommandField 0x{command_field:04X}", _STATUS_UNRECOGNIZED_OPERATION
        )
    if data_set_type is None:
        raise fail("CommandDataSetType (0000,0800) missing or malformed", _STATUS_MISSING_ATTRIBUTE)

    cls, fields = class_spec
    # Trusted construction: values were checked above, skip __post_init__ so that
    # harmless peer oddities (e.g. a 70-char error comment) survive.
    message = object.__new__(cls)
    setattr_ = object.__setattr__
    get = values.get
    for name, element, kind, mandatory in fields:
        value = get(name)
        if value is None:
            if bad is not None and name in bad:
                length = bad[name]
                if kind == _KIND_US:
                    text = f"{name} (0000,{element:04X}) has length {length}, not 2"
                elif kind == _KIND_AT:
                    text = f"{name} (0000,{element:04X}) length {length} not a multiple of 4"
                else:
                    text = f"{name} (0000,{element:04X}) is not ASCII"
                raise fail(text, _STATUS_MISTYPED_ARGUMENT)
            if mandatory:
                raise fail(
                    f"{cls.__name__} lacks mandatory {name} (0000,{element:04X})",
                    _STATUS_MISSING_ATTRIBUTE,
                )
        setattr_(message, name, value)
    refused = _judge(command_field, lambda key: get(_ELEMENTS[key][0]), data_set_type)
    if refused is not None:
        raise fail(*refused)
    return message, data_set_type

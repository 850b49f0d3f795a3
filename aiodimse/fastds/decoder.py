"""A flat walker from Implicit/Explicit VR Little Endian bytes to pydicom Datasets.

pydicom's reader yields RawDataElements and converts each on first access through hooks,
validators and ``DataElement.__init__``; for a 1000-item storage-commitment request that
is ~50 ms before the handler has read anything. This walker builds the same Dataset
eagerly: common VRs become DataElements holding exactly the values pydicom's converters
give; anything it cannot reproduce exactly (private tags, OB/OW/UN, values pydicom would
warn about, text in a non-default character set, ambiguous implicit VRs) stays a
RawDataElement that pydicom converts lazily, as it does today.

Valid input that pydicom reads in some special way (VR switches, Pixel Representation,
undefined-length non-sequence values, multi-valued character sets, non-default pydicom
settings) is declined: :func:`try_decode` returns ``None`` and the caller uses pydicom.
"""

from __future__ import annotations

import gc
import re
import struct
from typing import Any, cast

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding, python_encoding
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, MAX_VALUE_LEN, STR_VR_REGEXES
from pydicom.values import convert_DS_string, convert_IS_string, convert_PN

from .. import caches
from ..compat import LUT_DESCRIPTOR_TAGS as _LUT_DESCRIPTOR_TAGS
from ..compat import POSSESSIVE_RE, dictionary_vrs
from ..compat import dictionary_vr as _dictionary_vr_fast
from ..dataset_errors import DatasetDecodeError, DatasetTruncatedError
from ._proto import (
    _TAG_CACHE,
    _TAG_CACHE_MAX,
    DecodedDataset,
    cached_tag,
    dataset_members,
    elements_by_stores,
    pydicom_is_default,
)

__all__ = ["MAX_DEPTH", "try_decode"]

MAX_DEPTH = 64
"""Deepest sequence nesting decoded; deeper data sets are rejected as malformed."""

_HH = struct.Struct("<HH")
_HHL = struct.Struct("<HHL")
_HH2sH = struct.Struct("<HH2sH")
_L = struct.Struct("<L")
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD
_CHARSET = 0x00080005
_PIXEL_REP = 0x00280103
_NEW = object.__new__
_SETATTR = object.__setattr__
# Sets a Dataset's __dict__ past Dataset.__setattr__ (the slot object.__setattr__ finds).
_DS_SET_DICT = Dataset.__dict__["__dict__"].__set__
_RAW = object()  # converter result: keep the element raw
_unpack_hhl = _HHL.unpack_from
_unpack_hh2sh = _HH2sH.unpack_from
_unpack_l = _L.unpack_from
# The fast item loop reads a tag as one "<L": element in the high half, group low.
_unpack_ll = struct.Struct("<LL").unpack_from
_unpack_l2sh = struct.Struct("<L2sH").unpack_from
_ITEM_DELIM_LE = 0xE00DFFFE
_ITEM_LE = 0xE000FFFE
_SEQ_DELIM_LE = 0xE0DDFFFE
_UI_CACHE_MAX = 256
_DEFAULT_LIST = [default_encoding]
_str_new = str.__new__
_SPECIAL_TAGS = frozenset({0x00080005, 0x00280103, 0xFFFEE00D})  # charset, pixel rep, delim
# Dataset.__init__'s mutable members: _dict, and those DecodedDataset makes when read.
_DS_MUTABLE = frozenset({"_dict", "_private_blocks", "_pixel_array_opts", "_pixel_id"})

# UI values pydicom's UID() accepts without a warning (its regex and 64-char limit).
_UID_OK = re.compile(r"(?:(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*)?")
_uid_ok = _UID_OK.fullmatch
# The same test on the raw bytes for one non-empty UID: possessive, so no backtracking
# (~0.4 us for 40 characters against ~0.6 us); anything else goes to _cv_ui. Python
# 3.10 has no possessive quantifiers: the plain form matches the same (digits and dots
# are disjoint, so its backtracking stays linear).
_UID_ONE = re.compile(
    rb"(?:[1-9][0-9]*+|0)(?:\.(?:[1-9][0-9]*+|0))*+" if POSSESSIVE_RE
    else rb"(?:[1-9][0-9]*|0)(?:\.(?:[1-9][0-9]*|0))*"
)
_uid_one = _UID_ONE.fullmatch
_UID_CHARS = b"0123456789."
_leading_zero = re.compile(rb"\.0[0-9]").search
_IS_RE = STR_VR_REGEXES["IS"]
_DS_RE = STR_VR_REGEXES["DS"]

_NUMBERS: dict[str, tuple[int, str]] = {
    "US": (2, "H"), "SS": (2, "h"), "UL": (4, "L"), "SL": (4, "l"),
    "FL": (4, "f"), "FD": (8, "d"), "UV": (8, "Q"), "SV": (8, "q"),
}  # fmt: skip
_SINGLE = {vr: struct.Struct("<" + fmt) for vr, (_, fmt) in _NUMBERS.items()}
_CHARSET_VRS = frozenset({"PN", "SH", "LO", "ST", "LT", "UC", "UT"})
_LONG32 = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_VR_BYTES: dict[bytes, str] = {}  # b"UI" -> "UI", built with the VR table
_VR_OF: dict[int, str] = {}  # public tag -> dictionary VR, built on first use


class _Decline(Exception):
    """Valid (or possibly valid) input this walker does not reproduce; use pydicom."""


def _malformed(msg: str) -> DatasetDecodeError:
    return DatasetDecodeError(f"cannot decode data set: {msg}")


def _truncated(msg: str) -> DatasetTruncatedError:
    return DatasetTruncatedError(f"cannot decode data set: {msg}")


def _mv(ctor: Any, items: list[Any]) -> MultiValue[Any]:
    """A MultiValue as ``MultiValue(ctor, items)`` builds it, for already-typed items."""
    mv: MultiValue[Any] = _NEW(MultiValue)
    _SETATTR(mv, "__dict__", {"_constructor": ctor, "_list": items})
    return mv


def _empty_raw(vr: str | None) -> bytes | None:
    """pydicom's raw value for a zero-length element."""
    return cast(bytes | None, empty_value_for_VR(vr, raw=True))


def _uid_each(one: bytes, _: bytes) -> bool:
    """_Walker.uid_ok when not batched: the regex, value by value."""
    return _uid_one(one) is not None


def _uid(s: str) -> UID:
    return str.__new__(UID, s)


# -- value converters: bytes (non-empty) -> value, or _RAW -----------------------------


def _cv_ui(b: bytes) -> Any:
    s = b.decode("latin-1").rstrip("\0 ")
    if "\\" not in s:
        if len(s) <= 64 and _UID_OK.fullmatch(s):
            return _uid(s)
        return _RAW
    parts = s.split("\\")
    for p in parts:
        if len(p) > 64 or not _UID_OK.fullmatch(p):
            return _RAW
    return _mv(UID, [_uid(p) for p in parts])


def _cv_string(b: bytes) -> Any:
    s = b.decode("latin-1").rstrip(" \0")
    if "\\" not in s:
        return s
    return _mv(str, s.split("\\"))


def _cv_ae(b: bytes) -> Any:
    parts = [p.strip() for p in b.decode("latin-1").split("\\")]
    return parts[0] if len(parts) == 1 else _mv(str, parts)


def _cv_ur(b: bytes) -> Any:
    return b.decode("latin-1").rstrip()


def _text(max_len: int) -> Any:
    def convert(b: bytes) -> Any:
        if b"\x1b" in b:
            return _RAW
        parts = b.decode("latin-1").split("\\")
        for p in parts:
            if len(p) > max_len:
                return _RAW
        if len(parts) == 1:
            return parts[0].rstrip("\0 ")
        return _mv(str, [p.rstrip("\0 ") for p in parts])

    return convert


def _single_text(max_len: int) -> Any:
    def convert(b: bytes) -> Any:
        if b"\x1b" in b:
            return _RAW
        s = b.decode("latin-1")
        return _RAW if len(s) > max_len else s.rstrip("\0 ")

    return convert


def _cv_pn(b: bytes) -> Any:
    if b"\x1b" in b:
        return _RAW
    for p in b.rstrip(b"\x00 ").split(b"\\"):
        if len(p) > 64 or p.count(b"=") > 2:
            return _RAW
    return convert_PN(b, [default_encoding])


def _cv_is(b: bytes) -> Any:
    for p in b.decode("latin-1").rstrip(" \0").split("\\"):
        if len(p) > MAX_VALUE_LEN["IS"] or p.endswith("\n") or not _IS_RE.match(p):
            return _RAW
    return convert_IS_string(b, True)


def _cv_ds(b: bytes) -> Any:
    for p in b.decode("latin-1").strip().rstrip(" \0").split("\\"):
        if len(p) > MAX_VALUE_LEN["DS"] or p.endswith("\n") or not _DS_RE.match(p):
            return _RAW
    return convert_DS_string(b, True)


def _cv_at(b: bytes) -> Any:
    n, rest = divmod(len(b), 4)
    if rest:
        return _RAW
    tags = [Tag((g << 16) | e) for g, e in struct.iter_unpack("<HH", b)]
    return tags[0] if n == 1 else _mv(Tag, tags)


def _number(vr: str) -> Any:
    size, fmt = _NUMBERS[vr]
    single = _SINGLE[vr].unpack

    def convert(b: bytes) -> Any:
        n, rest = divmod(len(b), size)
        if rest:
            return _RAW
        if n == 1:
            return single(b)[0]
        return list(struct.unpack(f"<{n}{fmt}", b))

    return convert


_CONVERTERS: dict[str, Any] = {
    "UI": _cv_ui, "CS": _cv_string, "AS": _cv_string, "DA": _cv_string,
    "DT": _cv_string, "TM": _cv_string, "AE": _cv_ae, "UR": _cv_ur,
    "SH": _text(MAX_VALUE_LEN["SH"]), "LO": _text(MAX_VALUE_LEN["LO"]),
    "UC": _text(1 << 62), "ST": _single_text(MAX_VALUE_LEN["ST"]),
    "LT": _single_text(MAX_VALUE_LEN["LT"]), "UT": _single_text(1 << 62),
    "PN": _cv_pn, "IS": _cv_is, "DS": _cv_ds, "AT": _cv_at,
    **{vr: _number(vr) for vr in _NUMBERS},
}  # fmt: skip


# Explicit VRs the fast item loop converts: those with a converter and a 2-byte length.
_FAST_EXPLICIT = frozenset(_CONVERTERS) - _LONG32
# "<L"-read tag -> (tag object, tag, implicit VR or "", plain): built on first sight.
_TAG_INFO: dict[int, tuple[BaseTag, int, str, bool]] = {}


def _tag_info(raw_tag: int) -> tuple[BaseTag, int, str, bool]:
    """What the fast item loop needs to know about a tag, keyed as ``<L`` reads it.

    ``plain``: public, and none of the tags the general loop treats specially
    (character set, Pixel Representation, LUT descriptors, item and delimiter tags).
    The VR is the dictionary VR when Implicit VR can convert a plain tag with it,
    else "" (sequences, bulk data, ambiguous or unknown VRs, private tags).
    """
    tag = (raw_tag & 0xFFFF) << 16 | raw_tag >> 16
    group = tag >> 16
    plain = not (
        group & 1 or group == 0xFFFE or tag in _SPECIAL_TAGS or tag in _LUT_DESCRIPTOR_TAGS
    )
    vr = _VR_OF.get(tag, "") if plain else ""
    info = (cached_tag(tag), tag, vr if vr in _CONVERTERS else "", plain)
    if len(_TAG_INFO) < _TAG_CACHE_MAX and caches.enabled:
        _TAG_INFO[raw_tag] = info
    return info


caches.register("fastds.decoder.tag_info", "module", lambda _: len(_TAG_INFO), _TAG_INFO.clear)


def _tables() -> None:
    """Build the VR tables on first use (keeps import cheap)."""
    if not _VR_OF:
        from pydicom.valuerep import VR  # noqa: PLC0415 - only needed once, lazily

        _VR_BYTES.update({str(v).encode(): str(v) for v in VR if len(v) == 2})
        _VR_OF.update(dictionary_vrs())


class _Walker:
    """One decode: the buffer, the settings read once per call, and per-call caches."""

    __slots__ = ("buf", "infer_un", "mode", "ui_cache", "ui_max", "uid_ok", "unchecked")

    def __init__(self, buf: bytes, batch_uids: bool = True) -> None:
        self.buf = buf
        # Single UIDs made on the fast paths pass ``uid_ok(one, one)``: batched, a
        # record of the bytes (returned, so an empty value falls through), checked all
        # at once by uids_valid(), as a regex call per instance UID is a fifth of a
        # 1000-item decode; or, walking again when that fails, the regex per value.
        self.unchecked: dict[bytes, bytes] = {}
        self.uid_ok: Any = self.unchecked.setdefault if batch_uids else _uid_each
        self.infer_un = config.settings.infer_sq_for_un_vr
        self.mode = config.settings.reading_validation_mode
        if set(dataset_members()) != _DS_MUTABLE or not elements_by_stores():
            # a pydicom whose Dataset or DataElement this module does not know
            raise _Decline
        self.ui_cache: dict[bytes, Any] = {}  # UID objects by their bytes, this decode's
        self.ui_max = _UI_CACHE_MAX if caches.enabled else 0

    def dataset(  # noqa: PLR0917 - hot path; positional arguments are the cheapest
        self,
        pos: int,
        end: int,
        implicit: bool,
        depth: int,
        base: int,
        stream_end: int,
        parent_enc: Any,
        delimited: bool,
    ) -> tuple[dict[BaseTag, Any], int, Any]:
        """Decode elements from ``pos`` to ``end`` (or to an item delimiter).

        Returns the elements, the position after them and the data set's encodings.

        ``base`` is where pydicom's reader stream starts (offsets in ``file_tell`` are
        relative to it); ``stream_end`` is where that stream ends. The loop is written
        for speed: the common case (a defined-length public element in order) takes
        the fewest steps; the rare ones branch off after one combined test.
        """
        buf = self.buf
        mode = self.mode
        ui_cache = self.ui_cache
        ui_max = self.ui_max
        uid_ok = self.uid_ok
        vr_of = _VR_OF
        tag_cache = _TAG_CACHE
        elems: dict[BaseTag, Any] = {}
        enc = parent_enc
        text_ok = parent_enc in (default_encoding, _DEFAULT_LIST)
        last = -1
        while pos < end:
            if implicit:
                vpos = pos + 8
                if vpos > end:
                    raise _malformed(f"truncated element header at offset {pos}")
                group, element, length = _unpack_hhl(buf, pos)
                tag = group << 16 | element
                vr = vr_of.get(tag)
                keep_vr = None
            else:
                vpos = pos + 8
                if vpos > end:
                    raise _malformed(f"truncated element header at offset {pos}")
                group, element, raw_vr, length = _unpack_hh2sh(buf, pos)
                tag = group << 16 | element
                vr = keep_vr = _VR_BYTES.get(raw_vr)
                if vr is None:
                    if tag != _ITEM_DELIM:
                        raise _Decline  # unknown VR or a switch to implicit VR
                elif vr in _LONG32:
                    vpos = pos + 12
                    if vpos > end:
                        raise _malformed(f"truncated element header at offset {pos}")
                    length = _unpack_l(buf, pos + 8)[0]
                if group & 1:
                    vr = None  # private: pydicom converts it lazily (private creator)
            if tag <= last or length == _UNDEFINED or tag in _SPECIAL_TAGS:
                if tag == _ITEM_DELIM and delimited:
                    return elems, vpos, enc
                if tag <= last or tag in (_ITEM_DELIM, _PIXEL_REP):
                    # out of order or repeated (pydicom's dict decides), a stray item
                    # delimiter (pydicom stops there), or Pixel Representation (pydicom
                    # propagates it into items on access): leave all that to pydicom
                    raise _Decline
                last = tag
                btag = tag_cache.get(tag) or cached_tag(tag)
                if length == _UNDEFINED:
                    seq, pos = self._undefined_sequence(
                        tag, keep_vr, vpos, implicit, depth, base, stream_end, enc
                    )
                    e = _NEW(DataElement)
                    e.tag = btag
                    e.VR = "SQ"
                    e.validation_mode = mode
                    e._value = seq
                    e.file_tell = vpos - base
                    e.is_undefined_length = True
                    e.private_creator = None
                    elems[btag] = e
                    continue
                if tag == _CHARSET and vpos + length <= end:
                    enc = self._charset(buf[vpos : vpos + length])
                    text_ok = enc == [default_encoding]
            else:
                last = tag
                btag = tag_cache.get(tag) or cached_tag(tag)
            pos = vpos + length
            if pos > end:
                raise _truncated(f"value of {tag:08X} runs past the end of its container")
            if vr == "UI" and length:
                raw = buf[vpos:pos]
                value = ui_cache.get(raw)
                if value is None:
                    one = raw.rstrip(b"\0 ")
                    if len(one) <= 64 and uid_ok(one, one):
                        value = _str_new(UID, one, "latin-1")
                        # only single UIDs are shared: a str is immutable, a
                        # MultiValue is not and each element needs its own
                        if len(ui_cache) < ui_max:
                            ui_cache[raw] = value
                    else:
                        value = _cv_ui(raw)
            elif vr is None or len(vr) != 2:
                value = _RAW  # private, unknown, or ambiguous ('US or SS'...)
            elif vr == "SQ":
                if length:
                    # pydicom's convert_SQ reads the value as a new stream, with the
                    # encodings as a list
                    value, _ = self.sequence(
                        vpos,
                        pos,
                        implicit,
                        depth,
                        base,
                        vpos,
                        pos,
                        [enc] if isinstance(enc, str) else enc,
                    )
                    value.is_undefined_length = False
                else:
                    value = Sequence([])
            elif vr not in _CONVERTERS:
                value = _RAW
            elif not length:
                value = empty_value_for_VR(vr)
            elif (text_ok or vr not in _CHARSET_VRS) and tag not in _LUT_DESCRIPTOR_TAGS:
                value = _CONVERTERS[vr](buf[vpos:pos])
            else:
                value = _RAW
            if value is _RAW:
                raw_value = buf[vpos:pos] if length else _empty_raw(keep_vr)
                elems[btag] = RawDataElement(
                    btag, keep_vr, length, raw_value, vpos - base, implicit, True
                )
            else:
                e = _NEW(DataElement)  # as in sequence(): __init__'s attributes, in order
                e.tag = btag
                e.VR = vr  # type: ignore[assignment]  # a str here: None gave _RAW
                e.validation_mode = mode
                e._value = value
                e.file_tell = vpos - base
                e.is_undefined_length = False
                e.private_creator = None
                elems[btag] = e
        if delimited:
            raise _malformed("item without item delimitation")
        return elems, pos, enc

    def _undefined_sequence(  # noqa: PLR0917 - mirrors dataset()'s positional state
        self,
        tag: int,
        vr: str | None,
        vpos: int,
        implicit: bool,
        depth: int,
        base: int,
        stream_end: int,
        enc: Any,
    ) -> tuple[Sequence, int]:
        """An undefined-length value: a sequence, as pydicom decides, or declined."""
        if implicit:
            try:
                vr = _dictionary_vr_fast(tag)
            except KeyError:
                if stream_end - vpos >= 4 and _HH.unpack_from(self.buf, vpos) == (0xFFFE, 0xE000):
                    vr = "SQ"
        elif vr == "UN" and self.infer_un:
            vr = "SQ"
        if vr != "SQ":
            raise _Decline  # undefined-length value (e.g. encapsulated data)
        seq, pos = self.sequence(vpos, None, implicit, depth, base, base, stream_end, enc)
        seq.is_undefined_length = True
        return seq, pos

    def uids_valid(self) -> bool:
        """Whether every UID recorded by a batched ``uid_ok`` is one _UID_ONE matches.

        Joined by dots between two more: digits and dots only, no empty component
        (``..``), no leading zero (``.0`` then a digit) is exactly that regex.
        """
        unchecked = self.unchecked
        unchecked.pop(b"", None)  # recorded, but returned falsy: it took the other path
        if not unchecked:
            return True
        joined = b".%b." % b".".join(unchecked)
        return not (
            joined.translate(None, _UID_CHARS) or b".." in joined or _leading_zero(joined)
        )

    @staticmethod
    def _charset(raw: bytes) -> Any:
        """The Python encodings for a Specific Character Set value, as pydicom gets them."""
        value = raw.decode("latin-1").rstrip(" \0")
        if "\\" in value or value not in python_encoding:
            raise _Decline  # code extensions or corrections: pydicom warns/decides
        return convert_encodings(value)

    def finish(
        self, elems: dict[BaseTag, Any], implicit: bool, parent_enc: Any, enc: Any
    ) -> Dataset:
        """The top-level Dataset, with the attributes pydicom's read_dataset sets.

        (The other members are DecodedDataset's class attributes.)
        """
        ds: Dataset = _NEW(DecodedDataset)
        _DS_SET_DICT(ds, {
            "_parent_encoding": parent_enc, "_dict": elems, "_read_little": True,
            "_read_implicit": implicit, "_read_charset": enc,
        })  # fmt: skip
        return ds

    def sequence(  # noqa: PLR0917 - hot path; positional arguments are the cheapest
        self,
        pos: int,
        end: int | None,
        implicit: bool,
        depth: int,
        outer_base: int,
        base: int,
        stream_end: int,
        enc: Any,
    ) -> tuple[Sequence, int]:
        """Decode sequence items from ``pos`` to ``end`` (``None``: to a delimiter).

        Item offsets are relative to ``outer_base``, their elements' to ``base``.
        """
        if depth >= MAX_DEPTH:
            raise _malformed(f"sequences nested deeper than {MAX_DEPTH}")
        buf = self.buf
        limit = stream_end if end is None else end
        items: list[Dataset] = []
        # the fast item loop's state, looked up once per sequence
        unpack_ll = _unpack_ll
        unpack_l2sh = _unpack_l2sh
        info_get = _TAG_INFO.get
        vr_bytes = _VR_BYTES
        fast_explicit = _FAST_EXPLICIT
        ui_cache = self.ui_cache
        ui_max = self.ui_max
        uid_ok = self.uid_ok
        mode = self.mode
        text_ok = enc in (default_encoding, _DEFAULT_LIST)
        new = _NEW
        str_new = _str_new
        element_cls = DataElement
        dataset_cls = DecodedDataset
        set_dict = _DS_SET_DICT
        while True:
            if end is not None and pos >= end:
                break
            if limit - pos < 8:
                raise _malformed(f"truncated sequence at offset {pos}")
            raw_tag, length = unpack_ll(buf, pos)
            item_pos = pos
            pos += 8
            if raw_tag != _ITEM_LE:
                if raw_tag == _SEQ_DELIM_LE:
                    if end is not None:
                        raise _Decline  # pydicom ends a defined-length sequence here
                    break
                tag = (raw_tag & 0xFFFF) << 16 | raw_tag >> 16
                raise _malformed(f"expected an item tag at offset {item_pos}, got {tag:08X}")
            item_implicit = implicit
            if not implicit and pos + 6 <= stream_end:
                b0, b1 = buf[pos + 4], buf[pos + 5]
                item_implicit = not (0x40 < b0 < 0x5B and 0x40 < b1 < 0x5B)
            undefined = length == _UNDEFINED
            if undefined:
                stop = limit
            else:
                stop = pos + length
                if stop > limit:
                    raise _truncated(f"item at offset {item_pos} runs past its sequence")
            # The fast item loop: public elements in order, defined lengths, VRs with a
            # converter, values it converts without a doubt. On anything else it stops
            # and dataset() reads the item again from its start, so the item is the
            # same either way; the loop only spares dataset()'s generality per item.
            elems: dict[BaseTag, Any] = {}
            p = pos
            last = -1
            done = False
            while p < stop:
                # a header running past ``stop`` gives q > stop below (or struct.error
                # past the buffer, malformed either way): no separate test
                vp = p + 8
                if item_implicit:
                    raw_tag, ln = unpack_ll(buf, p)
                    btag, tag, vr, plain = info_get(raw_tag) or _tag_info(raw_tag)
                    if not vr:
                        if raw_tag == _ITEM_DELIM_LE and undefined and vp <= stop:
                            p = vp
                            done = True
                        break
                else:
                    raw_tag, raw_vr, ln = unpack_l2sh(buf, p)
                    btag, tag, vr, plain = info_get(raw_tag) or _tag_info(raw_tag)
                    if not plain:
                        if raw_tag == _ITEM_DELIM_LE and undefined and vp <= stop:
                            p = vp
                            done = True
                        break
                    vr = vr_bytes.get(raw_vr, "")
                    if vr not in fast_explicit:
                        break
                q = vp + ln
                if tag <= last or q > stop:
                    break
                last = tag
                if vr == "UI":
                    raw = buf[vp:q]
                    value = ui_cache.get(raw)
                    if value is None:
                        one = raw.rstrip(b"\0 ")
                        if len(one) > 64 or not uid_ok(one, one):
                            break  # empty, several values, or one pydicom warns about
                        value = str_new(UID, one, "latin-1")
                        if len(ui_cache) < ui_max:
                            ui_cache[raw] = value
                elif not ln:
                    value = empty_value_for_VR(vr)
                elif text_ok or vr not in _CHARSET_VRS:
                    value = _CONVERTERS[vr](buf[vp:q])
                    if value is _RAW:
                        break
                else:
                    break
                # set as DataElement.__init__ sets them, in its order: the values
                # live in the object (no __dict__ made), one object for the collector
                e = new(element_cls)
                e.tag = btag
                e.VR = vr
                e.validation_mode = mode
                e._value = value
                e.file_tell = vp - base
                e.is_undefined_length = False
                e.private_creator = None
                elems[btag] = e
                p = q
            else:
                done = not undefined  # p == stop: q > stop stopped anything longer
            if done:
                pos = p
                item_enc = enc
            else:
                elems, pos, item_enc = self.dataset(
                    pos, stop, item_implicit, depth + 1, base, stream_end, enc, undefined
                )
            # what read_dataset, read_sequence_item and read_sequence set on an item
            # (the other members are DecodedDataset's class attributes)
            tell = item_pos - outer_base
            ds: Dataset = new(dataset_cls)
            set_dict(ds, {
                "_parent_encoding": enc, "_dict": elems, "_read_little": True,
                "_read_implicit": item_implicit, "_read_charset": item_enc,
                "is_undefined_length_sequence_item": undefined, "seq_item_tell": tell,
                "file_tell": tell,
            })  # fmt: skip
            items.append(ds)
        seq: Sequence = _NEW(Sequence)
        _SETATTR(seq, "__dict__", {"_list": items})
        return seq, pos


def try_decode(data: bytes | bytearray | memoryview, implicit_vr: bool) -> Dataset | None:
    """Decode a little-endian data set as pydicom's ``read_dataset`` would, or ``None``.

    ``None`` means the fast path declined (input or pydicom settings it does not
    reproduce exactly); the caller should use pydicom. Malformed input raises
    :class:`aiodimse.datasets.DatasetDecodeError`.
    """
    if not pydicom_is_default():
        return None
    _tables()
    buf = data if type(data) is bytes else bytes(data)
    n = len(buf)
    if n >= 6:
        found_implicit = not (0x40 < buf[4] < 0x5B and 0x40 < buf[5] < 0x5B)
        if found_implicit != implicit_vr:
            return None  # pydicom warns and switches VR encoding
    # The walker allocates thousands of objects and no reference cycles, so cyclic
    # GC passes while it runs are pure overhead (half the decode time for 1000 items);
    # pause the collector for the walk, and restore it as it was.
    gc_was_enabled = gc.isenabled()
    if gc_was_enabled:
        gc.disable()
    try:
        walker = _Walker(buf)
        elems, _, enc = walker.dataset(0, n, implicit_vr, 0, 0, n, default_encoding, False)
        if not walker.uids_valid():  # one is not a plain UID: walk again, one by one
            walker = _Walker(buf, batch_uids=False)
            elems, _, enc = walker.dataset(0, n, implicit_vr, 0, 0, n, default_encoding, False)
        return walker.finish(elems, implicit_vr, default_encoding, enc)
    except _Decline:
        return None
    except (struct.error, IndexError) as exc:  # a bound check missed: still malformed
        raise _malformed(str(exc)) from exc
    except (ValueError, TypeError, LookupError):
        return None  # a pydicom converter objected: let pydicom read it its own way
    finally:
        if gc_was_enabled:
            gc.enable()

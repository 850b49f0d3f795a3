"""Encode a pydicom Dataset to Implicit/Explicit VR Little Endian, byte-identical to pydicom.

pydicom's ``write_dataset`` goes through a DicomBytesIO per element, ``convert_encodings``
per element and a seek-back per sequence item: ~40 µs per element. This walks the
Dataset the same way (tag order, same raw-versus-converted decision, same padding and
length rules) and packs values directly. Elements it does not reproduce itself (PN, AT,
UN, buffered or odd values, non-default character sets) are written by pydicom's own
``write_data_element``, one element at a time; data sets that need pydicom's ambiguous-VR
correction, and anything that raises, are declined (``None``) so the caller runs pydicom.
"""

from __future__ import annotations

import operator
import struct
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from pydicom.charset import convert_encodings, default_encoding, python_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, tag_in_exception
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, PersonName

from .. import caches
from ..compat import LUT_DESCRIPTOR_TAGS as _LUT_DESCRIPTOR_TAGS
from ..compat import pydicom_layout_ok
from .kept import Kept, keep, kept_encoding

__all__ = ["try_encode"]

_IMPLICIT_HDR = struct.Struct("<HHL").pack
_SHORT_HDR = struct.Struct("<HH2sH").pack
_LONG_HDR = struct.Struct("<HH2sHL").pack
_ITEM_UNDEFINED = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
_ITEM_DELIM = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
_SEQ_DELIM = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_ITEM_HDR = struct.Struct("<4sL").pack
_ITEM_TAG = b"\xfe\xff\x00\xe0"
_UNDEFINED = 0xFFFFFFFF
_CHARSET = 0x00080005
_LONG32 = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_MULTI = (MultiValue, list, tuple)
_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
_SINGLE = {vr: struct.Struct("<" + fmt).pack for vr, fmt in _NUMBERS.items()}
_STRINGS = frozenset({"UI", "AE", "AS", "CS", "UR", "DA", "DT", "TM"})
_TEXTS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT"})
_NUMBER_STRINGS = frozenset({"IS", "DS"})
_BYTES = frozenset({"OB", "OD", "OF", "OL", "OW", "OV"})
_KNOWN = _STRINGS | _TEXTS | _BYTES | frozenset(_NUMBERS) | {"IS", "DS", "PN", "AT", "UN"}
# the Python encodings text is encoded with directly, each by the name of the same codec
# that CPython encodes without a codec lookup (iso8859 costs a lookup per call)
_FAST_TEXT_ENCODINGS = {"iso8859": "latin-1", "latin_1": "latin-1", "UTF8": "utf-8",
                        "utf_8": "utf-8"}
# what dataset() writes in its loop, by VR (0: the rest); none of these is 32-bit length
_UI_KIND, _STRING_KIND, _TEXT_KIND, _PN_KIND, _SQ_KIND = 1, 2, 3, 4, 5
_KINDS = {**dict.fromkeys(_STRINGS - {"UR"}, _STRING_KIND), "UI": _UI_KIND,
          **dict.fromkeys(_TEXTS - {"UC", "UT"}, _TEXT_KIND), "PN": _PN_KIND,
          "SQ": _SQ_KIND}
_PADS = {vr: "\0" if vr == "UI" else " " for vr in _STRINGS}


class _Decline(Exception):
    """Something pydicom's writer should do itself (or raise about)."""


def _safe_encodings(charset: Any) -> list[str] | None:
    """``convert_encodings(charset)`` where that is certain not to warn, else ``None``.

    Cached per charset value: pydicom's conversion costs more than encoding a small
    data set. The returned list is shared; callers only read it.
    """
    if isinstance(charset, MultiValue | list):
        if len(charset) != 1:
            return None
        value = charset[0]
    else:
        value = charset
    if not isinstance(value, str):
        return None
    return _encodings_of(value)


def _encodings_of(value: str) -> list[str] | None:
    """Known charset names only (a data set's value is anyone's); kept by _CHARSETS."""
    if value not in python_encoding and value not in python_encoding.values():
        return None
    return convert_encodings(value)


# charset value -> (encodings for sequence items, encoding for fast text); shared by
# every encoding, as the values depend on the charset alone (bounded: cleared when full;
# a value of over _CHARSET_KEY_MAX characters, never a real one, is not kept)
_CHARSETS: dict[Any, tuple[list[str] | None, str | None]] = {}
_CHARSETS_MAX = 64
_CHARSET_KEY_MAX = 256


# UI elements (tag, exact str value) -> encoded element, per syntax; bounded: cleared when
# full, and only values a UID may be (at most _UI_VALUE_MAX characters) are kept, so each
# syntax's table holds under 250 kB whatever data sets it encodes
_UI_CACHE_MAX = 1024
_UI_VALUE_MAX = 64
_UID_TYPES = (str, UID)
_index = operator.index  # a BaseTag as an exact int (cheaper than int())


def _charset_encodings(charset: Any) -> tuple[list[str] | None, str | None]:
    """(encodings for sequence items, encoding for fast text) of a charset value, cached."""
    key = charset if isinstance(charset, str) else tuple(charset or ())
    cached = _CHARSETS.get(key)
    if cached is None:
        encodings = _safe_encodings(charset or [default_encoding])
        text_enc = encodings[0] if encodings and len(encodings) == 1 else None
        text_enc = _FAST_TEXT_ENCODINGS.get(text_enc)  # type: ignore[arg-type]
        cached = (encodings, text_enc)
        if len(str(key)) > _CHARSET_KEY_MAX or not caches.enabled:
            return cached
        if len(_CHARSETS) >= _CHARSETS_MAX:
            _CHARSETS.clear()
        _CHARSETS[key] = cached
    return cached


class _Encoder:
    __slots__ = ("implicit", "kept", "seen", "ui_cache")

    def __init__(self, implicit: bool) -> None:
        self.implicit = implicit
        self.ui_cache: dict[tuple[int, str], bytes] = {}
        # Datasets encoded again: their bytes while they hold (kept.py), by id
        self.kept: dict[int, Kept] = {}
        self.seen: dict[int, weakref.ref[Dataset]] = {}

    def dataset(self, ds: Dataset, parent_encoding: Any, corrected: bool) -> bytes:
        """Encode ``ds`` as pydicom's ``write_dataset(fp, ds, parent_encoding)`` does.

        ``corrected`` is true when an enclosing data set went through pydicom's
        ambiguous-VR correction, which also walks (and may change) this one.
        Strings, texts and person names, the usual VRs of a reply, are written in
        the loop; the rest through :meth:`value`, or pydicom's element writer.
        """
        implicit = self.implicit
        elems = ds._dict
        has_charset = _CHARSET in elems
        # pydicom's test, read straight from the attributes behind its properties
        convert = (implicit, True) != (ds._read_implicit, ds._read_little) or (
            ds._read_charset != (ds._character_set if has_charset else ds._parent_encoding)
        )
        # pydicom converts raw elements and corrects ambiguous VRs in place first:
        # a data set with either is declined when it would (checked element by element)
        strict = convert or corrected
        charset = ds.SpecificCharacterSet if has_charset else parent_encoding
        encodings: list[str] | None = None
        text_enc: str | None = None
        looked_up = False  # the charset's encodings are looked up when first needed
        ui_cache = self.ui_cache
        kinds = _KINDS
        out: list[bytes] = []
        append = out.append
        # as exact ints: the same order as BaseTag's own comparison, without a Python call each
        for tag in sorted(elems, key=_index) if len(elems) > 1 else elems:
            if not tag & 0xFFFF and tag >> 16 > 6:
                continue  # pydicom does not write retired group lengths
            elem = elems[tag]
            if type(elem) is DataElement and not elem.is_undefined_length:
                # the usual VRs of a reply, written here; each branch leaves data None
                # for a value it does not write (the general path below does)
                vr = elem.VR
                kind = kinds.get(vr, 0)
                value = elem._value
                data = None
                if kind == _UI_KIND:
                    if type(value) in _UID_TYPES:
                        # by value: equal exact str/UID values give the same element bytes
                        ui_key = (_index(tag), value)
                        data = ui_cache.get(ui_key)
                        if data is None:
                            data = self.ui_element(tag, value)
                            if (data is not None and len(value) <= _UI_VALUE_MAX
                                    and caches.enabled):
                                if len(ui_cache) >= _UI_CACHE_MAX:
                                    ui_cache.clear()
                                ui_cache[ui_key] = data
                        if data is not None:
                            append(data)
                            continue
                elif kind == _STRING_KIND:
                    if type(value) is str:
                        # latin-1: pydicom's default_encoding (iso8859), fast-path name
                        data = (value + _PADS[vr] if len(value) & 1 else value
                                ).encode("latin-1")
                elif kind == _SQ_KIND:
                    if not looked_up:
                        encodings, text_enc = _charset_encodings(charset)
                        looked_up = True
                    if encodings is not None:
                        body = self.items(value, encodings, strict)
                        _append_sequence(append, tag, body, False, implicit)
                        continue
                elif kind:
                    if not looked_up:
                        encodings, text_enc = _charset_encodings(charset)
                        looked_up = True
                    if kind == _TEXT_KIND:
                        if text_enc is not None and type(value) is str:
                            data = value.encode(text_enc)
                            if len(data) & 1:
                                data += b" "
                    elif type(value) is PersonName and encodings is not None:
                        # write_PN's bytes: nothing when empty (VM 0), else encoded
                        data = value.encode(encodings) if value else b""
                        if len(data) & 1:
                            data += b" "
                elif strict and len(vr) != 2:
                    raise _Decline
                if data is not None:
                    n = len(data)
                    if implicit:
                        append(_IMPLICIT_HDR(tag >> 16, tag & 0xFFFF, n))
                    elif n <= 0xFFFF:
                        append(_SHORT_HDR(tag >> 16, tag & 0xFFFF, vr.encode(), n))
                    else:
                        append(self.delegate(elem, charset))  # pydicom: UN, warning
                        continue
                    append(data)
                    continue
            elif strict and (isinstance(elem, RawDataElement) or len(elem.VR) != 2):
                raise _Decline
            if not looked_up:
                encodings, text_enc = _charset_encodings(charset)
                looked_up = True
            if isinstance(elem, RawDataElement):
                if elem.value is None:
                    elem = ds[tag]
                else:
                    append(self.raw(elem, charset))
                    continue
            vr = elem.VR
            value = elem._value if type(elem) is DataElement else elem.value
            if vr == "SQ":
                if encodings is None or not isinstance(elem, DataElement):
                    append(self.delegate(elem, charset))
                    continue
                body = self.items(value, encodings, strict)
                _append_sequence(append, tag, body, elem.is_undefined_length, implicit)
                continue
            data = None
            if not elem.is_undefined_length and type(elem) is DataElement:
                data = self.value(tag, vr, value, text_enc)
            if data is None:
                append(self.delegate(elem, charset))
                continue
            n = len(data)
            if implicit:
                append(_IMPLICIT_HDR(tag >> 16, tag & 0xFFFF, n))
            elif vr in _LONG32:
                append(_LONG_HDR(tag >> 16, tag & 0xFFFF, vr.encode(), 0, n))
            elif n <= 0xFFFF and len(vr) == 2:
                append(_SHORT_HDR(tag >> 16, tag & 0xFFFF, vr.encode(), n))
            else:
                append(self.delegate(elem, charset))  # pydicom rewrites it as UN, warning
                continue
            append(data)
        return b"".join(out)

    def plain(self, ds: Dataset) -> bytes | None:
        """``ds`` encoded if it holds only UI elements and sequences of such items, else None.

        Such a data set (a Storage Commitment request, say) needs none of the general
        path's checks: with no raw element and no ambiguous VR, pydicom's conversion
        and VR correction change nothing, and without text the character set plays
        no part. Only reads: a None leaves ``ds`` as it was for the general path.
        """
        elems = ds._dict
        implicit = self.implicit
        ui_cache = self.ui_cache
        out: list[bytes] = []
        append = out.append
        n = len(elems)
        if n == 2:  # (a sequence item of two UIDs, often): ordered without sorted()
            a, b = elems
            tags: Iterable[BaseTag] = (a, b) if _index(a) < _index(b) else (b, a)
        else:
            tags = sorted(elems, key=_index) if n > 2 else elems
        for tag in tags:
            elem = elems[tag]
            if type(elem) is not DataElement or not tag & 0xFFFF:
                return None  # (and group lengths, which pydicom may skip)
            vr = elem.VR
            value = elem._value
            if vr == "UI" and type(value) in _UID_TYPES and not elem.is_undefined_length:
                ui_key = (_index(tag), value)
                data = ui_cache.get(ui_key)
                if data is None:
                    data = self.ui_element(tag, value)
                    if data is None:
                        return None
                    if len(value) <= _UI_VALUE_MAX and caches.enabled:
                        if len(ui_cache) >= _UI_CACHE_MAX:
                            ui_cache.clear()
                        ui_cache[ui_key] = data
                append(data)
            elif vr == "SQ":
                parts: list[bytes] = []
                # pydicom's Sequence iterates through a generator: read its list
                items = value._list if type(value) is Sequence else value or ()
                for item in items:  # as write_sequence_item writes each item
                    if not isinstance(item, Dataset):
                        return None
                    body = self.plain(item)
                    if body is None:
                        return None
                    if getattr(item, "is_undefined_length_sequence_item", False):
                        parts += (_ITEM_UNDEFINED, body, _ITEM_DELIM)
                    else:
                        parts += (_ITEM_HDR(_ITEM_TAG, len(body)), body)
                _append_sequence(append, tag, b"".join(parts), elem.is_undefined_length,
                                 implicit)
            else:
                return None
        return b"".join(out)

    def ui_element(self, tag: int, value: str) -> bytes | None:
        """A UI element with a str value: header and NUL-padded value, as pydicom writes it.

        ``None`` for a value too long for Explicit VR's 16-bit length (the general path
        has pydicom rewrite it as UN).
        """
        # latin-1 is pydicom's default_encoding (iso8859) under its C fast-path name
        data = (value + "\0" if len(value) % 2 else value).encode("latin-1")
        n = len(data)
        if self.implicit:
            return _IMPLICIT_HDR(tag >> 16, tag & 0xFFFF, n) + data
        if n > 0xFFFF:
            return None
        return _SHORT_HDR(tag >> 16, tag & 0xFFFF, b"UI", n) + data

    def items(self, value: Any, encodings: list[str], corrected: bool) -> bytes:
        """Encode sequence items as pydicom's ``write_sequence`` does."""
        # pydicom's Sequence iterates (and sizes) through Python methods: read its list
        items = value._list if type(value) is Sequence else value
        if not items:
            return b""
        out: list[bytes] = []
        kept = self.kept
        for item in items:
            if not isinstance(item, Dataset):
                raise _Decline
            body = kept_encoding(kept, item, encodings)
            if body is None:
                body = self.dataset(item, encodings, corrected)
                keep(kept, self.seen, item, encodings, body)
            if getattr(item, "is_undefined_length_sequence_item", False):
                out += (_ITEM_UNDEFINED, body, _ITEM_DELIM)
            else:
                out += (_ITEM_HDR(_ITEM_TAG, len(body)), body)
        return b"".join(out)

    def value(self, tag: int, vr: str, value: Any, text_enc: str | None) -> bytes | None:
        """The padded value bytes pydicom writes, or ``None`` to let pydicom write it.

        pydicom writes nothing for an empty value (VM 0); the branches below give
        ``b""`` for those cases without a separate test.
        """
        if value is None:
            return b"" if vr in _KNOWN else None
        if vr in _STRINGS:
            if isinstance(value, str):
                s = value
            elif isinstance(value, _MULTI) and all(isinstance(v, str) for v in value):
                s = "\\".join(value)
            else:
                return None
            if len(s) % 2:
                s += "\0" if vr == "UI" else " "
            return s.encode("latin-1")  # default_encoding, by its fast-path name
        if vr in _NUMBERS:
            if value == "":
                return b""
            if not hasattr(value, "append"):
                return _SINGLE[vr](value)
            if vr == "SS" and tag in _LUT_DESCRIPTOR_TAGS:
                return None
            return struct.pack(f"<{len(value)}{_NUMBERS[vr]}", *value)
        if vr in _TEXTS:
            if text_enc is None:
                return None
            if isinstance(value, str):
                data = value.encode(text_enc)
            elif isinstance(value, _MULTI) and all(isinstance(v, str) for v in value):
                data = b"\\".join([v.encode(text_enc) for v in value])
            else:
                return None
            return data + b" " if len(data) % 2 else data
        if vr in _NUMBER_STRINGS:
            if isinstance(value, _MULTI):
                s = "\\".join(
                    x.original_string if hasattr(x, "original_string") else str(x) for x in value
                )
            else:
                s = value.original_string if hasattr(value, "original_string") else str(value)
            if len(s) % 2:
                s += " "
            return s.encode("latin-1")  # default_encoding, by its fast-path name
        if vr in _BYTES and isinstance(value, bytes | bytearray):
            data = bytes(value)
            return data + b"\0" if len(data) % 2 else data
        if isinstance(value, (str, bytes, *_MULTI)) and not len(value) and vr in _KNOWN:
            return b""  # VM 0 for the VRs pydicom writes itself (PN, AT, UN)
        return None

    def raw(self, elem: RawDataElement, charset: Any) -> bytes:
        """A raw element in its original encoding: header plus its bytes, as pydicom does."""
        tag = elem.tag
        value = elem.value
        if elem.length == _UNDEFINED or not isinstance(value, bytes):
            return self.delegate(elem, charset)
        n = len(value)
        if self.implicit:
            return _IMPLICIT_HDR(tag >> 16, tag & 0xFFFF, n) + value
        vr = elem.VR
        if vr is None or len(vr) != 2:
            return self.delegate(elem, charset)
        if vr in _LONG32:
            return _LONG_HDR(tag >> 16, tag & 0xFFFF, vr.encode(), 0, n) + value
        if n > 0xFFFF:
            return self.delegate(elem, charset)
        return _SHORT_HDR(tag >> 16, tag & 0xFFFF, vr.encode(), n) + value

    def delegate(self, elem: DataElement | RawDataElement, charset: Any) -> bytes:
        """One element written by pydicom's ``write_data_element``."""
        fp = DicomBytesIO()
        fp.is_implicit_VR = self.implicit
        fp.is_little_endian = True
        with tag_in_exception(elem.tag):
            write_data_element(fp, elem, charset)
        return bytes(fp.getvalue())


def try_encode(ds: Dataset, implicit_vr: bool) -> bytes | None:
    """Encode ``ds`` (little endian) as pydicom's ``write_dataset`` would, or ``None``.

    ``None`` means the fast path declined, and the caller should use pydicom (which
    also raises the same error pydicom always raised for an unencodable data set).
    """
    if not pydicom_layout_ok():
        return None  # a pydicom whose objects this module does not know
    encoder = _IMPLICIT if implicit_vr else _EXPLICIT
    try:
        data = kept_encoding(encoder.kept, ds, default_encoding)
        if data is not None:
            return data
        data = encoder.plain(ds)
        if data is None:
            data = encoder.dataset(ds, default_encoding, False)
        keep(encoder.kept, encoder.seen, ds, default_encoding, data)
        return data
    except Exception:  # any failure: pydicom's writer decides (and raises its own error)
        return None


_IMPLICIT = _Encoder(True)
_EXPLICIT = _Encoder(False)


def _clear_ui() -> None:
    _IMPLICIT.ui_cache.clear()
    _EXPLICIT.ui_cache.clear()


def _clear_kept() -> None:
    for encoder in (_IMPLICIT, _EXPLICIT):
        encoder.kept.clear()
        encoder.seen.clear()


caches.register("fastds.encoder.charsets", "module", lambda _: len(_CHARSETS), _CHARSETS.clear)
caches.register("fastds.encoder.ui_elements", "module",
                lambda _: len(_IMPLICIT.ui_cache) + len(_EXPLICIT.ui_cache), _clear_ui)
caches.register("fastds.encoder.kept", "module",
                lambda _: len(_IMPLICIT.kept) + len(_EXPLICIT.kept), _clear_kept)


def _append_sequence(
    append: Callable[[bytes], None], tag: int, body: bytes, undefined: bool, implicit: bool
) -> None:
    """A sequence element: its header, its encoded items, and its delimiter if undefined."""
    length = _UNDEFINED if undefined else len(body)
    if implicit:
        append(_IMPLICIT_HDR(tag >> 16, tag & 0xFFFF, length))
    else:
        append(_LONG_HDR(tag >> 16, tag & 0xFFFF, b"SQ", 0, length))
    append(body)
    if undefined:
        append(_SEQ_DELIM)

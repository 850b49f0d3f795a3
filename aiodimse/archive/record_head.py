"""The index attributes of a received instance, read from its data set's first bytes.

The library keeps a streamed data set's first bytes (up to 4 kB) in memory
(``event.extra["dataset_start"]``); the attributes the index needs
(``records.RECORD_TAGS``, all before (0020,0014)) are nearly always among them.
Reading them here, without pydicom, spares the writer opening the file again and
pydicom's Dataset and value conversion, which were half the archive's own work per
instance. Only the plain case is read: little endian; each element's VR the
dictionary's; values of printable ASCII in a character set that reads it as ASCII;
no undefined length before the last attribute needed. Anything else is None, and
the writer reads the file with pydicom as before. The values are ``record_values``'
for the same bytes (tests/archive/test_record_head.py checks it against pydicom).
"""

from __future__ import annotations

import re
import struct

from ..store.records import KEYS, normalise

__all__ = ["record_from_start"]

_WANTED: dict[int, str] = {key.tag: key.vr for key in KEYS.values() if not key.computed}
_KEYWORD: dict[int, str] = {key.tag: key.keyword for key in KEYS.values() if not key.computed}
_CHARSET = 0x00080005
_LAST = max(_WANTED)
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC",
                       b"UN", b"UR", b"UT", b"UV"))
# Character sets in which printable ASCII bytes decode as ASCII (pydicom's codecs).
_ASCII_CHARSETS = frozenset(("", "ISO_IR 6", "ISO 2022 IR 6", "ISO_IR 100",
                             "ISO 2022 IR 100", "ISO_IR 192"))
_PRINTABLE = re.compile(rb"[ -~]*\x00*")  # trailing NULs: a UID's padding
_INTEGER = re.compile(r" *[+-]?[0-9]{1,12}")
_HEADER = struct.Struct("<HHL")  # implicit VR: tag, length
_EXPLICIT = struct.Struct("<HH2sH")  # explicit VR: tag, VR, 2-byte length
_LONG = struct.Struct("<L")


def _elements(data: bytes, implicit: bool) -> dict[int, bytes] | None:
    """The raw values of the wanted elements (and the character set); None when the
    bytes end before an element past the last wanted one, or an element before it
    has an undefined length or another VR than the dictionary's."""
    found: dict[int, bytes] = {}
    pos, end = 0, len(data)
    while pos + 8 <= end:
        if implicit:
            group, element, length = _HEADER.unpack_from(data, pos)
            tag, vr, pos = group << 16 | element, b"", pos + 8
        else:
            group, element, vr, length = _EXPLICIT.unpack_from(data, pos)
            tag = group << 16 | element
            if tag > _LAST:
                return found
            if not (vr.isalpha() and vr.isupper()):
                return None  # no VR: pydicom guesses
            if vr in _LONG_VRS:
                if pos + 12 > end:
                    return None
                length = _LONG.unpack_from(data, pos + 8)[0]
                pos += 12
            else:
                pos += 8
        if tag > _LAST:
            return found
        if length == _UNDEFINED:
            return None
        if tag in _WANTED or tag == _CHARSET:
            wanted = "CS" if tag == _CHARSET else _WANTED[tag]
            if (vr and vr.decode("latin-1") != wanted) or pos + length > end:
                return None
            found[tag] = data[pos:pos + length]
        pos += length
    return None


def record_from_start(data: bytes, transfer_syntax_implicit: bool
                      ) -> dict[str, str] | None:
    """``record_values`` of the data set that starts with ``data`` (little endian,
    implicit VR or explicit), or None when not read here (module doc)."""
    found = _elements(data, transfer_syntax_implicit)
    if found is None:
        return None
    charset = found.pop(_CHARSET, None)
    if charset is not None:
        if _PRINTABLE.fullmatch(charset) is None:
            return None
        if charset.decode("ascii").strip(" \x00") not in _ASCII_CHARSETS:
            return None
    attrs: dict[str, str] = {}
    for tag, raw in found.items():
        if _PRINTABLE.fullmatch(raw) is None:
            return None
        value = raw.decode("ascii")
        vr = _WANTED[tag]
        if vr in ("LO", "SH"):  # pydicom strips each value's padding
            text = "\\".join(v.rstrip("\x00 ") for v in value.split("\\"))
        else:  # the whole value's
            text = value.rstrip(" \x00")
            if vr == "IS" and text and _INTEGER.fullmatch(text) is None:
                return None  # several, or not an integer: pydicom's IS judges
            if vr == "PN" and "=" in text:
                return None  # component groups: pydicom's PersonName judges
        if text:
            attrs[_KEYWORD[tag]] = normalise(vr, text)
    return attrs

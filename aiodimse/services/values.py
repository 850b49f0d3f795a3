"""The values of a peer's data set that pydicom would warn about, found without pydicom.

pydicom validates values when it converts them (reading) and when it sets them
(``from_json``, setattr): an invalid value gives a warning whose text holds the value,
and Python's warnings registry keeps every distinct text it has shown (a peer sending
invalid 20 KB UIDs grew a server by 173 MiB in 2,000 requests). The services run
``first_invalid`` on a request's data set before they read any value: it reads raw
values as bytes and converted ones as they are, judges them with pydicom's own
validators (which only return a verdict), and converts nothing, so nothing is warned
about. A request with such a value is refused (0x0106 / 0x0115, with the element as
Offending Element): PS3.5 6.2 makes those values invalid anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydicom.charset import convert_encodings, decode_bytes, python_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import VALIDATORS

from ..datasets import MAX_NESTING

__all__ = ["MAX_DEPTH", "first_invalid"]

MAX_DEPTH = MAX_NESTING
"""Sequence nesting beyond which a data set is refused (its first sequence element):
the decoder's own limit, which a decoded data set is within already."""

_CHARSET_TAG = 0x00080005
# Text VRs pydicom validates. Those it validates when converting a raw value are judged
# only while raw (once converted, the warning, if any, was given already); the others
# only when set, so in both forms.
_ON_READ = frozenset({"DS", "IS", "PN", "UI"})
_ON_WRITE = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UR"})
_SINGLE_VALUED = frozenset({"LT", "ST", "UR"})
_CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST"})
_DELIMITERS = {0x5C, 0x09, 0x0A, 0x0C, 0x0D, 0x3D, 0x5E}  # as pydicom's text VRs
_UNKNOWN: list[str] = []  # a Specific Character Set pydicom does not know (by identity)


def _invalid(vr: str, values: Iterable[Any]) -> bool:
    validate: Callable[[str, Any], tuple[bool, str]] = VALIDATORS[vr]
    return any(not validate(vr, v)[0] for v in values if v is not None and v != "")


def _split(vr: str, text: str) -> list[str]:
    text = text.rstrip("\0 ") if vr == "UI" else text.rstrip(" ")
    return [text] if vr in _SINGLE_VALUED else text.split("\\")


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, MultiValue)) else [value]


def _charset(ds: Dataset, inherited: list[str] | None) -> list[str] | None:
    """The item's encodings; _UNKNOWN when its Specific Character Set is not pydicom's."""
    if _CHARSET_TAG not in ds:
        return inherited
    elem: Any = ds.get_item(_CHARSET_TAG)  # raw, if not yet converted
    if isinstance(elem, RawDataElement):
        raw = elem.value or b""
        values = [v.strip() for v in raw.decode("latin-1").split("\\")]
    else:
        values = [str(v).strip() for v in _values(elem.value)]
    values = [v for v in values if v]
    if any(v not in python_encoding for v in values):
        return _UNKNOWN
    return convert_encodings(values) if values else None


def first_invalid(ds: Dataset, _encodings: list[str] | None = None, _depth: int = 0
                  ) -> int | None:
    """The tag of the first value in ``ds`` (items included) pydicom would warn about."""
    encodings = _charset(ds, _encodings)
    if encodings is _UNKNOWN:
        return _CHARSET_TAG
    for tag in list(ds.keys()):
        elem: Any = ds.get_item(tag)  # raw, if not yet converted
        vr = elem.VR
        if isinstance(elem, RawDataElement):
            if vr is None:
                try:
                    vr = dictionary_VR(tag)
                except KeyError:
                    continue  # private or unknown: pydicom reads it as UN, unjudged
            if vr == "SQ":
                elem = ds[tag]  # items are read, their values stay raw
            else:
                raw = elem.value
                if not raw or (vr not in _ON_READ and vr not in _ON_WRITE):
                    continue
                if vr in _CHARSET_VRS and encodings:
                    text = decode_bytes(raw, encodings, _DELIMITERS)
                else:
                    text = raw.decode("latin-1")
                if _invalid(vr, _split(vr, text)):
                    return int(tag)
                continue
        if vr == "SQ":
            if _depth >= MAX_DEPTH:
                return int(tag)
            for item in elem.value or ():
                found = first_invalid(item, encodings, _depth + 1)
                if found is not None:
                    return found
        elif vr in _ON_WRITE and _invalid(vr, (str(v) for v in _values(elem.value))):
            return int(tag)
    return None

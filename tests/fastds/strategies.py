"""Hypothesis strategies: pydicom Datasets over the common VRs, sequences and private tags."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st
from pydicom._dicom_dict import DicomDictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

__all__ = ["datasets", "tags_by_vr"]

_SKIP_TAGS = {0x00080005, 0x00280103, 0x00281101, 0x00281102, 0x00281103, 0x00283002}


def tags_by_vr(vr: str, limit: int = 40) -> list[int]:
    """Public dictionary tags of ``vr`` (so Implicit VR decodes them to that VR)."""
    tags = [
        tag
        for tag, entry in DicomDictionary.items()
        if entry[0] == vr
        and tag not in _SKIP_TAGS
        and tag >> 16 not in (0x0000, 0x0002, 0x7FE0, 0xFFFE)
        and tag & 0xFFFF
    ]
    return sorted(tags)[:limit]


_UID = st.lists(
    st.one_of(st.just("0"), st.integers(1, 10**12).map(str)), min_size=2, max_size=6
).map(".".join)
_ASCII = string.ascii_letters + string.digits + " .-_^,()"
_CS = st.text(string.ascii_uppercase + string.digits + "_ ", max_size=16).map(str.strip)


def _multi(single: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(single, st.lists(single, min_size=2, max_size=3))


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_ASCII, max_size=max_size).map(str.rstrip)


_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "UI": _multi(_UID),
    "CS": _multi(_CS),
    "SH": _multi(_text(16)),
    "LO": _multi(_text(64)),
    "LT": _text(200),
    "ST": _text(100),
    "UT": _text(300),
    "UC": _multi(_text(80)),
    "AE": _multi(st.text(string.ascii_uppercase + "_", min_size=1, max_size=16)),
    "AS": st.sampled_from(["012Y", "003M", "100D"]),
    "DA": _multi(st.sampled_from(["20200101", "19991231", "20240229"])),
    "TM": _multi(st.sampled_from(["123456", "000000.5", "2359"])),
    "DT": st.sampled_from(["20200101123456", "2020"]),
    "UR": st.sampled_from(["http://example.com/a?b=c", "urn:oid:1.2.3"]),
    "PN": _multi(st.sampled_from(["Doe^John", "Smith^Jane^^Dr", "A=B"])),
    "IS": _multi(st.integers(-(10**9), 10**10).map(str)),
    "DS": _multi(st.sampled_from(["1.5", "-0.25", "3", "1e3", "0.001"])),
    "US": _multi(st.integers(0, 0xFFFF)),
    "SS": _multi(st.integers(-0x8000, 0x7FFF)),
    "UL": _multi(st.integers(0, 0xFFFFFFFF)),
    "SL": _multi(st.integers(-(2**31), 2**31 - 1)),
    "FL": _multi(st.sampled_from([0.5, -2.0, 1e10, 3.0])),
    "FD": _multi(st.floats(allow_nan=False, allow_infinity=False)),
    "AT": _multi(st.sampled_from([0x00100010, 0x00081150, 0x7FE00010])),
    "OB": st.binary(max_size=20),
    "OW": st.binary(max_size=20).map(lambda b: b[: len(b) // 2 * 2]),
    "UN": st.binary(max_size=10),
}
_TAGS = {vr: tags_by_vr(vr) for vr in [*_VALUES, "SQ"]}


@st.composite
def _element(draw: st.DrawFn) -> DataElement:
    vr = draw(st.sampled_from(sorted(_VALUES)))
    tag = draw(st.sampled_from(_TAGS[vr]))
    value = None if draw(st.integers(0, 9)) == 0 else draw(_VALUES[vr])
    return DataElement(tag, vr, value)


@st.composite
def datasets(draw: st.DrawFn, depth: int = 0) -> Dataset:
    """A Dataset of common-VR elements, optional private block and nested sequences."""
    ds = Dataset()
    for elem in draw(st.lists(_element(), max_size=8)):
        ds.add(elem)
    if draw(st.booleans()):
        ds.add_new(0x00090010, "LO", "ACME 1.0")
        ds.add_new(0x00091001, draw(st.sampled_from(["LO", "UL", "OB"])), None)
        ds[0x00091001].value = {"LO": "x", "UL": 7, "OB": b"\x01\x02\x03"}[ds[0x00091001].VR]
    if depth < 2 and draw(st.integers(0, 2)) == 0:
        items = draw(st.lists(datasets(depth + 1), max_size=3))
        for item in items:
            item.is_undefined_length_sequence_item = draw(st.booleans())
        tag = draw(st.sampled_from(_TAGS["SQ"]))
        ds.add_new(tag, "SQ", Sequence(items))
        ds[tag].is_undefined_length = draw(st.booleans())
    return ds

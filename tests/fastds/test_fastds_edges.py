"""fastds edge cases: DCMTK-style undefined lengths, character sets, malformed bytes, fallbacks."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import config
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from aiodimse import datasets as bridge
from aiodimse.dataset_errors import DatasetDecodeError, DatasetTruncatedError
from aiodimse.fastds import MAX_DEPTH, try_decode, try_encode
from tests.examples import examples

from .strategies import datasets
from .test_fastds_equivalence import (
    assert_same,
    fast_decode,
    pydicom_decode,
    pydicom_encode,
    storage_commitment,
)


def _el(tag: int, vr: bytes, value: bytes, *, implicit: bool = False) -> bytes:
    """One explicit (or implicit) VR LE element with a defined length."""
    group, elem = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack("<HHL", group, elem, len(value)) + value
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR"):
        return struct.pack("<HH2sHL", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


ITEM_U = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
ITEM_DELIM = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
SEQ_DELIM = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
UID1 = b"1.2.840.10008.5.1.4.1.1.2\x00"
UID2 = b"1.2.3.4\x00"


def _sq_undefined(tag: int, vr: bytes, items: list[bytes], *, implicit: bool = False) -> bytes:
    group, elem = tag >> 16, tag & 0xFFFF
    if implicit:
        head = struct.pack("<HHL", group, elem, 0xFFFFFFFF)
    else:
        head = struct.pack("<HH2sHL", group, elem, vr, 0, 0xFFFFFFFF)
    return head + b"".join(ITEM_U + i + ITEM_DELIM for i in items) + SEQ_DELIM


def _check(data: bytes, implicit: bool) -> None:
    ours = fast_decode(data, implicit)
    assert_same(ours, pydicom_decode(data, implicit))
    assert try_encode(fast_decode(data, implicit), implicit) == pydicom_encode(
        pydicom_decode(data, implicit), implicit
    )


def test_dcmtk_style_undefined_length_sequences_explicit() -> None:
    inner = _el(0x00081150, b"UI", UID1) + _el(0x00081155, b"UI", UID2)
    nested = _sq_undefined(0x00081199, b"SQ", [inner, b""])
    data = (
        _sq_undefined(0x00081115, b"SQ", [nested + _el(0x00100010, b"PN", b"Doe^J ")])
        + _el(0x00081195, b"UI", UID2)
        + _sq_undefined(0x00091010, b"SQ", [inner])  # private, undefined length
    )
    _check(data, False)
    ds = fast_decode(data, False)
    assert ds[0x00081115].is_undefined_length
    item = ds.ReferencedSeriesSequence[0]
    assert item.is_undefined_length_sequence_item
    assert item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == "1.2.3.4"


def test_un_of_undefined_length_with_implicit_items() -> None:
    # PS3.5 6.2.2: a sequence sent as UN (undefined length) holds Implicit VR items
    inner = _el(0x00081150, b"", UID1, implicit=True) + _el(0x00081155, b"", UID2, implicit=True)
    data = _el(0x00081195, b"UI", UID2) + _sq_undefined(0x00081199, b"UN", [inner, inner])
    _check(data, False)
    seq = fast_decode(data, False).ReferencedSOPSequence
    assert [item._read_implicit for item in seq] == [True, True]


def test_implicit_undefined_length_sequences() -> None:
    inner = _el(0x00081150, b"", UID1, implicit=True)
    data = _sq_undefined(0x00081199, b"", [inner, inner], implicit=True) + _sq_undefined(
        0x00291010, b"", [inner], implicit=True
    )
    _check(data, True)


@pytest.mark.parametrize(
    ("charset", "name", "text"),
    [("ISO_IR 192", "Müller^Jürgen", "Straße ☃"), ("ISO_IR 100", "Müller^Jürgen", "Straße")],
)
@pytest.mark.parametrize("implicit", [True, False])
def test_specific_character_set(charset: str, name: str, text: str, implicit: bool) -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.StudyDescription = text
    ds.ReferencedSOPSequence = Sequence([Dataset()])
    ds.ReferencedSOPSequence[0].PatientName = name
    data = pydicom_encode(ds, implicit)
    assert try_encode(ds, implicit) == data
    ours = fast_decode(data, implicit)
    assert isinstance(ours._dict[0x00100010], RawDataElement)  # pydicom converts text
    assert_same(ours, pydicom_decode(data, implicit))
    assert ours.PatientName == name and ours.StudyDescription == text
    assert ours.ReferencedSOPSequence[0].PatientName == name


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ambiguous_and_pixel_representation() -> None:
    ds = Dataset()
    ds.SmallestImagePixelValue = 5  # 'US or SS' in the dictionary
    ds.ReferencedSOPSequence = Sequence([Dataset()])
    data = pydicom_encode(ds, True)
    _check(data, True)
    assert fast_decode(data, True)._dict[0x00280106].VR is None
    ds.PixelRepresentation = 1  # pydicom pushes it into items on access: declined
    data = pydicom_encode(ds, True)
    assert try_decode(data, True) is None
    assert bridge.decode_dataset(data, bridge.IMPLICIT_VR_LITTLE_ENDIAN) == pydicom_decode(
        data, True
    )


def test_non_default_pydicom_config_is_declined() -> None:
    ds = Dataset()
    ds.StudyDate = "20200101"
    data = pydicom_encode(ds, True)
    old = config.datetime_conversion
    config.datetime_conversion = True
    try:
        assert try_decode(data, True) is None
        decoded = bridge.decode_dataset(data, bridge.IMPLICIT_VR_LITTLE_ENDIAN)
        assert type(decoded.StudyDate).__name__ == "DA"
    finally:
        config.datetime_conversion = old
    assert isinstance(fast_decode(data, True).StudyDate, str)


def _nested(depth: int) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = "1.2.3"
    for _ in range(depth):
        outer = Dataset()
        outer.ReferencedSOPSequence = Sequence([ds])
        ds = outer
    return ds


def test_depth_cap() -> None:
    data = pydicom_encode(_nested(MAX_DEPTH - 1), True)
    assert fast_decode(data, True) == pydicom_decode(data, True)
    data = pydicom_encode(_nested(MAX_DEPTH + 1), True)
    with pytest.raises(bridge.DatasetDecodeError):
        try_decode(data, True)


@pytest.mark.parametrize(
    "data",
    [
        _el(0x00081150, b"UI", UID1)[:-3],  # value runs past the end
        _el(0x00081150, b"UI", UID1) + b"\x08\x00\x55",  # truncated header
        struct.pack("<HH2sHL", 8, 0x1199, b"SQ", 0, 8) + b"\x08\x00\x50\x11\x00\x00\x00\x00",
        _sq_undefined(0x00081199, b"SQ", [b""])[:-8],  # no sequence delimiter
        b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff\x12\x34\x56\x78\x00\x00\x00\x00",
    ],
)
def test_malformed_raises_the_bridge_error(data: bytes) -> None:
    with pytest.raises(bridge.DatasetDecodeError):
        try_decode(data, False)


def test_bridge_refuses_a_data_set_cut_short_and_keeps_pydicom_errors() -> None:
    truncated = _el(0x00100020, b"LO", b"ABCDEF")[:-2]  # pydicom would read 'ABCD'
    with pytest.raises(DatasetTruncatedError, match="runs past the end"):
        bridge.decode_dataset(truncated, bridge.EXPLICIT_VR_LITTLE_ENDIAN)
    implicit = struct.pack("<HHL", 0x0010, 0x0020, 10) + b"abc"  # (a 10-byte value, 3 sent)
    with pytest.raises(DatasetTruncatedError):
        bridge.decode_dataset(implicit, bridge.IMPLICIT_VR_LITTLE_ENDIAN)
    item = _sq_undefined(0x00081199, b"SQ", [_el(0x00081150, b"UI", UID1)])
    cut = item[:-20]  # the item's value cut inside
    with pytest.raises(DatasetDecodeError):
        bridge.decode_dataset(cut, bridge.EXPLICIT_VR_LITTLE_ENDIAN)
    broken = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff\x12\x34\x56\x78\x00\x00\x00\x00"
    with pytest.raises(bridge.DatasetDecodeError):
        bridge.decode_dataset(broken, bridge.EXPLICIT_VR_LITTLE_ENDIAN)


@pytest.mark.parametrize("syntax", sorted(bridge.SUPPORTED_TRANSFER_SYNTAXES))
def test_bridge_matches_pydicom_in_every_syntax(syntax: str) -> None:
    ds = storage_commitment(5)
    ds.PatientName = "Doe^Jane"
    ds.Rows = 512
    ds.add_new(0x00091001, "LO", "private")
    data = bridge.encode_dataset(ds, syntax)
    implicit = syntax == bridge.IMPLICIT_VR_LITTLE_ENDIAN
    if syntax in (bridge.IMPLICIT_VR_LITTLE_ENDIAN, bridge.EXPLICIT_VR_LITTLE_ENDIAN):
        assert data == pydicom_encode(ds, implicit)
        assert_same(bridge.decode_dataset(data, syntax), pydicom_decode(data, implicit))
    decoded = bridge.decode_dataset(data, syntax)
    assert decoded.ReferencedSOPSequence[4] == ds.ReferencedSOPSequence[4]
    assert decoded.PatientName == "Doe^Jane" and decoded.Rows == 512
    assert bridge.encode_dataset(decoded, syntax) == data


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[bytes, bool]:
    implicit = draw(st.booleans())
    data = bytearray(pydicom_encode(draw(datasets()), implicit))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "flip", "insert"]))
        at = draw(st.integers(0, len(data)))
        if kind == "cut":
            del data[at:]
        elif kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
    return bytes(data), implicit


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_mutated())
def test_fuzz_only_the_bridge_error(case: tuple[bytes, bool]) -> None:
    data, implicit = case
    try:
        ours = try_decode(data, implicit)
    except bridge.DatasetDecodeError:
        ours = None
    syntax = bridge.IMPLICIT_VR_LITTLE_ENDIAN if implicit else bridge.EXPLICIT_VR_LITTLE_ENDIAN
    with contextlib.suppress(bridge.DatasetDecodeError):
        bridge.decode_dataset(data, syntax)
    if ours is not None:  # accepted: then it is what pydicom reads, element for element
        theirs = pydicom_decode(data, implicit)
        for tag in list(theirs.keys()):
            try:
                expected = repr(theirs[tag])
            except Exception as exc:  # pydicom fails on this value when read; so must we
                with pytest.raises(type(exc)):
                    ours[tag]
                continue
            assert repr(ours[tag]) == expected


def test_collector_state_is_restored() -> None:
    import gc

    data = pydicom_encode(storage_commitment(3), True)
    assert gc.isenabled()
    fast_decode(data, True)
    assert gc.isenabled()
    with pytest.raises(bridge.DatasetDecodeError):
        try_decode(data[:-3], True)
    assert gc.isenabled()
    gc.disable()
    try:
        fast_decode(data, True)
        assert not gc.isenabled()
    finally:
        gc.enable()

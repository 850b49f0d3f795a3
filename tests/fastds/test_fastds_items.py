"""fastds on many small sequence items: the fast item path, shared caches, keyword reads."""

from __future__ import annotations

import copy
import pickle
import struct
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from aiodimse.datasets import DatasetDecodeError
from aiodimse.fastds import try_decode, try_encode
from aiodimse.fastds.decoder import _UID_ONE, _Walker
from tests.examples import examples

from .test_fastds_equivalence import (
    assert_same,
    fast_decode,
    pydicom_decode,
    pydicom_encode,
    storage_commitment,
)

SYNTAXES = [True, False]


def _items(values: list[dict[str, object]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = "1.2.3"
    items = []
    for kw in values:
        item = Dataset()
        for k, v in kw.items():
            setattr(item, k, v)
        items.append(item)
    ds.ReferencedSOPSequence = Sequence(items)
    return ds


def test_equal_multi_valued_uids_are_not_shared() -> None:
    """Two items with the same multi-valued UI bytes get a MultiValue each, as in pydicom."""
    for implicit in SYNTAXES:
        ds = _items([{"ReferencedSOPClassUID": ["1.2", "1.3"]}] * 2)
        data = pydicom_encode(ds, implicit)
        ours, theirs = fast_decode(data, implicit), pydicom_decode(data, implicit)
        assert_same(ours, theirs)
        a, b = ours.ReferencedSOPSequence
        assert a.ReferencedSOPClassUID is not b.ReferencedSOPClassUID
        a.ReferencedSOPClassUID.append("1.4")
        assert b.ReferencedSOPClassUID == ["1.2", "1.3"]


def _pair(ds: Dataset, implicit: bool) -> tuple[Dataset, Dataset]:
    data = pydicom_encode(ds, implicit)
    return fast_decode(data, implicit), pydicom_decode(data, implicit)


def test_keyword_reads_match_pydicom() -> None:
    """Every keyword read (first, repeated, absent, raw) gives pydicom's result."""
    for implicit in SYNTAXES:
        src = _items([{"ReferencedSOPClassUID": "1.2.840.10008.5.1.4.1.1.2"}])
        src.PatientName = "Doe^John"
        src.SpecificCharacterSet = "ISO_IR 100"  # PN stays raw until read
        src.add_new(0x00090010, "LO", "ACME")  # private: raw
        ours, theirs = _pair(src, implicit)
        assert type(ours._dict[0x00100010]) is RawDataElement  # the pydicom-converts path
        for _ in range(3):  # first read installs the descriptor, later reads use it
            for kw in (
                "TransactionUID",
                "PatientName",
                "SpecificCharacterSet",
                "ReferencedSOPSequence",
            ):
                mine, its = getattr(ours, kw), getattr(theirs, kw)
                assert type(mine) is type(its) and mine == its
            item, its_item = ours.ReferencedSOPSequence[0], theirs.ReferencedSOPSequence[0]
            assert item.ReferencedSOPClassUID == its_item.ReferencedSOPClassUID
            assert type(item.ReferencedSOPClassUID) is type(its_item.ReferencedSOPClassUID)
            assert ours.ReferencedSOPSequence is ours.ReferencedSOPSequence
        assert_same(ours, theirs)


def test_missing_keyword_raises_as_pydicom() -> None:
    ours, theirs = _pair(_items([{}]), True)
    for _ in range(2):
        for kw in ("PatientID", "ReferencedSOPInstanceUID", "NotAKeyword"):
            assert not hasattr(ours, kw) and getattr(ours, kw, 7) == 7
            try:
                getattr(ours, kw)
            except AttributeError as exc:
                mine = exc
            try:
                getattr(theirs, kw)
            except AttributeError as exc:
                its = exc
            assert str(mine) == str(its).replace("'Dataset'", "'DecodedDataset'")
            assert (mine.name, mine.obj) == (kw, ours) and mine.obj is ours
    assert not hasattr(type(ours), "PatientID")


def test_set_and_delete_after_a_read() -> None:
    ours, theirs = _pair(_items([{"ReferencedSOPClassUID": "1.2"}]), False)
    for ds in (ours, theirs):
        assert ds.TransactionUID == "1.2.3"
        ds.TransactionUID = "1.2.4"
        assert ds.TransactionUID == "1.2.4" and "TransactionUID" not in vars(ds)
        del ds.TransactionUID
        assert not hasattr(ds, "TransactionUID")
        ds.PatientID = "X"
        assert ds.PatientID == "X"
    assert ours == theirs and str(ours) == str(theirs)


def test_dir_lists_what_pydicom_lists() -> None:
    ours, theirs = _pair(_items([{"ReferencedSOPClassUID": "1.2"}]), True)
    _ = ours.PatientID if hasattr(ours, "PatientID") else None
    _ = ours.ReferencedSOPSequence[0].ReferencedSOPClassUID
    assert dir(ours) == dir(theirs)
    assert dir(ours.ReferencedSOPSequence[0]) == dir(theirs.ReferencedSOPSequence[0])


# -- the fast item loop, on bytes built element by element ------------------------------

_LONG = (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR")


def _el(tag: int, vr: bytes, value: bytes, implicit: bool) -> bytes:
    group, elem = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack("<HHL", group, elem, len(value)) + value
    if vr in _LONG:
        return struct.pack("<HH2sHL", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def _item(body: bytes, undefined: bool) -> bytes:
    if undefined:
        return ITEM_U + body + ITEM_DELIM
    return struct.pack("<HHL", 0xFFFE, 0xE000, len(body)) + body


def _sequence(tag: int, items: list[bytes], implicit: bool, undefined: bool) -> bytes:
    body = b"".join(items)
    if undefined:
        body += SEQ_DELIM
    length = 0xFFFFFFFF if undefined else len(body)
    group, elem = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack("<HHL", group, elem, length) + body
    return struct.pack("<HH2sHL", group, elem, b"SQ", 0, length) + body


ITEM_U = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
ITEM_DELIM = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
SEQ_DELIM = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"

_UID = st.lists(
    st.one_of(st.just("0"), st.integers(1, 10**12).map(str)), min_size=1, max_size=8
).map(lambda parts: ".".join(parts).encode())
_ODD_UIDS = [
    b"", b"1.2\\1.3", b"1.2\\1.2", b"01.2", b"1..2", b"1.2.", b".1", b"1.2a", b"1.00",
    b"1." * 32 + b"1", b"0", b"0.0.0", b"1.0.01", b" 1.2", b"1.2 ", b"1.2\x00\x00",
    b"1.2\xe9", b"1.2.840.10008.1.2\x00",
]  # fmt: skip
# (tag, VR, values): item elements, in tag order; private and LUT tags leave the fast loop
_ELEMENTS: list[tuple[int, bytes, st.SearchStrategy[bytes]]] = [
    (0x00080016, b"UI", st.one_of(_UID, st.sampled_from(_ODD_UIDS))),
    (0x00080060, b"CS", st.sampled_from([b"CT", b"MR\\CT", b"", b"ab c"])),
    (0x00081150, b"UI", st.one_of(_UID, st.sampled_from(_ODD_UIDS))),
    (0x00081155, b"UI", st.one_of(_UID, st.sampled_from(_ODD_UIDS))),
    (0x00081160, b"IS", st.sampled_from([b"1", b"1\\2", b"x", b"", b"12345678901234"])),
    (0x00081190, b"UR", st.sampled_from([b"http://x/y", b""])),  # a 4-byte length
    (0x00081197, b"US", st.sampled_from([b"\x10\x01", b"\x01\x00\x02\x00", b"\x01", b""])),
    (0x00090010, b"LO", st.just(b"ACME")),
    (0x00091001, b"LO", st.just(b"private")),
    (0x00100010, b"PN", st.sampled_from([b"Doe^John", b"M\xfcller", b"M\xc3\xbcller", b"a=b=c=d"])),
    (0x00100020, b"LO", st.sampled_from([b"ID1", b"x" * 70, b"\x1b$B"])),
    (0x00280010, b"US", st.just(b"\x00\x02")),
    (0x00281101, b"US", st.just(b"\x00\x01\x00\x00\x10\x00")),  # LUT descriptor
    (0x00400254, b"LO", st.sampled_from([b"step", b"a\\b", "Stra\u00dfe".encode()])),
    (0x0040A160, b"UT", st.sampled_from([b"text", "\u2603".encode()])),
]


def _pad(vr: bytes, value: bytes) -> bytes:
    if len(value) % 2 == 0:
        return value
    return value + (b"\x00" if vr == b"UI" else b" ")


@st.composite
def _item_body(draw: st.DrawFn, implicit: bool, depth: int) -> bytes:
    chosen = draw(st.lists(st.sampled_from(range(len(_ELEMENTS))), max_size=5, unique=True))
    parts = []
    for i in sorted(chosen):
        tag, vr, values = _ELEMENTS[i]
        value = _pad(vr, draw(values))
        parts.append((tag, _el(tag, vr, value, implicit)))
    if depth < 1 and draw(st.integers(0, 4)) == 0:  # a nested sequence in the item
        inner = draw(st.lists(_item_body(implicit, depth + 1), max_size=2))
        items = [_item(b, draw(st.booleans())) for b in inner]
        parts.append((0x00081199, _sequence(0x00081199, items, implicit, draw(st.booleans()))))
    parts.sort()
    if draw(st.integers(0, 19)) == 13:  # out of order: pydicom decides
        parts.reverse()
    return b"".join(p for _, p in parts)


@st.composite
def _info(draw: st.DrawFn) -> tuple[bytes, bool]:
    implicit = draw(st.booleans())
    items_implicit = implicit or draw(st.integers(0, 5)) == 0  # implicit items, explicit SQ
    bodies = draw(st.lists(_item_body(items_implicit, 0), max_size=6))
    items = [_item(b, draw(st.booleans())) for b in bodies]
    head = b""
    charset = draw(st.sampled_from([b"", b"", b"", b"ISO_IR 100", b"ISO_IR 192"]))
    if charset:  # text in items then decodes in the data set's character set
        head = _el(0x00080005, b"CS", charset, implicit)
    head += _el(0x00081195, b"UI", _pad(b"UI", b"1.2.3"), implicit)
    return head + _sequence(0x00081199, items, implicit, draw(st.booleans())), implicit


def _read_values(ds: Dataset) -> list[tuple[str, str, str]]:
    """repr of every element, recursively, with the warnings pydicom gives on the way."""
    out = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for elem in ds.iterall():
            out.append((repr(elem), type(elem.value).__name__, elem.VR))
    return [*out, *(("warning", str(w.message), "") for w in caught)]


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_info())
def test_fast_item_loop_matches_pydicom(case: tuple[bytes, bool]) -> None:
    data, implicit = case
    try:
        ours = try_decode(data, implicit)
    except DatasetDecodeError:
        ours = None  # the bridge gives it to pydicom
    if ours is None:
        return
    theirs = pydicom_decode(data, implicit)
    assert _read_values(ours) == _read_values(theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same(ours, theirs)
        assert try_encode(ours, implicit) == pydicom_encode(theirs, implicit)
        assert _outcome(ours.to_json) == _outcome(theirs.to_json)


def _outcome(fn: Any) -> tuple[str, Any]:
    """A call's result, or its exception's type and message (pydicom fails on some values)."""
    try:
        return "ok", fn()
    except Exception as exc:  # whatever pydicom raises, ours must raise too
        return type(exc).__name__, str(exc)


def test_the_fast_loop_takes_plain_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain items never reach the general loop (that is where the time goes)."""
    calls = []
    general = _Walker.dataset

    def counting(self: _Walker, *args: Any) -> Any:
        calls.append(args[0])
        return general(self, *args)

    monkeypatch.setattr(_Walker, "dataset", counting)
    for implicit in SYNTAXES:
        for undefined in (False, True):
            src = storage_commitment(50)
            for item in src.ReferencedSOPSequence:
                item.is_undefined_length_sequence_item = undefined
            data = pydicom_encode(src, implicit)
            calls.clear()
            ours = fast_decode(data, implicit)
            assert calls == [0]  # the top level only
            assert_same(ours, pydicom_decode(data, implicit))


def test_an_item_delimiter_past_its_sequence_is_malformed() -> None:
    """An undefined-length item whose delimiter runs past a defined-length sequence."""
    for implicit in SYNTAXES:
        body = _el(0x00081150, b"UI", b"1.2\x00", implicit)
        value = ITEM_U + body + ITEM_DELIM[:4]  # the sequence ends mid-delimiter
        if implicit:
            head = struct.pack("<HHL", 0x0008, 0x1199, len(value))
        else:
            head = struct.pack("<HH2sHL", 0x0008, 0x1199, b"SQ", 0, len(value))
        tail = ITEM_DELIM[4:] + _el(0x00100020, b"LO", b"ID", implicit)
        with pytest.raises(DatasetDecodeError):
            try_decode(head + value + tail, implicit)


def test_copies_and_pickles_read_as_pydicom() -> None:
    ours, theirs = _pair(storage_commitment(3), True)
    _ = ours.ReferencedSOPSequence[0].ReferencedSOPClassUID  # descriptors installed
    for clone in (copy.copy(ours), copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert clone == theirs and str(clone) == str(theirs)
        item = clone.ReferencedSOPSequence[2]
        its = theirs.ReferencedSOPSequence[2]
        assert item.ReferencedSOPInstanceUID == its.ReferencedSOPInstanceUID
        assert type(item.ReferencedSOPInstanceUID) is type(its.ReferencedSOPInstanceUID)
        assert not hasattr(item, "PatientID")
    assert ours.to_json() == theirs.to_json()


@settings(max_examples=examples(300), deadline=None)
@given(uids=st.lists(st.one_of(_UID, st.sampled_from(_ODD_UIDS), st.binary(max_size=8))))
def test_the_batched_uid_check_is_the_regex(uids: list[bytes]) -> None:
    """All recorded UIDs at once pass exactly when each passes _UID_ONE on its own."""
    walker = _Walker(b"")
    for one in uids:
        walker.uid_ok(one, one)
    assert walker.uids_valid() == all(_UID_ONE.fullmatch(u) for u in uids if u)


def test_a_bad_uid_among_many_is_read_as_pydicom_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One odd UID in 1000 items: the batched check fails and the walk is repeated."""
    walks = []
    init = _Walker.__init__

    def counting(self: _Walker, buf: bytes, batch_uids: bool = True) -> None:
        walks.append(batch_uids)
        init(self, buf, batch_uids)

    monkeypatch.setattr(_Walker, "__init__", counting)
    for odd in (b"1.02.3", b"1..2", b"1.2.", b"1.2a", b"1.2\\1.3"):
        for implicit in SYNTAXES:
            src = storage_commitment(1000)
            data = bytearray(pydicom_encode(src, implicit))
            good = b"1.2.826.0.1.3680043.8.498.500.1500"
            at = data.index(good)
            data[at : at + len(good)] = odd.ljust(len(good), b"\0")
            walks.clear()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom warns about the odd value
                ours = try_decode(bytes(data), implicit)
                assert ours is not None and walks == [True, False]
                theirs = pydicom_decode(bytes(data), implicit)
                assert_same(ours, theirs)
            value = ours.ReferencedSOPSequence[500].ReferencedSOPInstanceUID
            assert value == (odd.decode().split("\\") if b"\\" in odd else odd.decode())
            walks.clear()
            assert fast_decode(pydicom_encode(src, implicit), implicit) is not None
            assert walks == [True]  # all plain: one walk

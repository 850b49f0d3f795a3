"""fastds against pydicom: the same Datasets from the same bytes, the same bytes from a Dataset."""

from __future__ import annotations

import copy
import io
import pickle
import warnings
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from aiodimse import datasets as bridge
from aiodimse.fastds import DecodedDataset, new_dataset, try_decode, try_encode
from tests.examples import examples

from .strategies import datasets

SYNTAXES = [True, False]  # implicit VR?


def pydicom_encode(ds: Dataset, implicit: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = True
    write_dataset(fp, ds)
    return bytes(fp.getvalue())


def pydicom_decode(data: bytes, implicit: bool) -> Dataset:
    return read_dataset(io.BytesIO(data), implicit, True)


def fast_decode(data: bytes, implicit: bool) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydicom's reader warns about none of these
        ds = try_decode(data, implicit)
    assert ds is not None
    return ds


def _state(ds: Dataset, names: Iterable[str] | None = None) -> dict[str, Any]:
    """``ds``'s attributes but ``_dict``, read (so made, where made on first read)."""
    return {k: getattr(ds, k) for k in names or ds.__dict__ if k != "_dict"}


def _name(ctor: Any) -> str:
    return f"{ctor.__module__}.{ctor.__qualname__}"


def assert_same(ours: Dataset, theirs: Dataset) -> None:
    """Equal, element by element: attributes, value types, repr; recursively.

    Ours is pydicom's Dataset, as the documented subclass with a faster keyword
    read; every keyword read gives what pydicom's own Dataset gives.
    """
    assert type(ours) is DecodedDataset and isinstance(ours, Dataset)
    for elem in list(theirs):
        if elem.keyword:
            mine, its = getattr(ours, elem.keyword), getattr(theirs, elem.keyword)
            assert type(mine) is type(its) and mine == its, elem.keyword
    assert set(ours.__dict__) <= set(theirs.__dict__)  # the rest made when read
    assert _state(ours, theirs.__dict__) == _state(theirs)
    assert sorted(ours.keys()) == sorted(theirs.keys())
    for tag in sorted(theirs.keys()):
        a, b = ours[tag], theirs[tag]  # converts raw elements on both sides
        assert type(a) is type(b)
        assert type(a.value) is type(b.value), (a, type(a.value), type(b.value))
        assert list(a.__dict__) == list(b.__dict__)  # the same attributes, in order
        assert repr(a) == repr(b)
        assert a == b
        if isinstance(b.value, MultiValue):
            # convert_PN's constructor is a fresh closure per call: compare by name
            assert _name(a.value._constructor) == _name(b.value._constructor)
            assert [type(x) for x in a.value] == [type(x) for x in b.value]
        if isinstance(b.value, Sequence):
            assert a.value.__dict__.keys() == b.value.__dict__.keys()
            assert getattr(a.value, "is_undefined_length", None) == getattr(
                b.value, "is_undefined_length", None
            )
            for x, y in zip(a.value, b.value, strict=True):
                assert_same(x, y)
        else:
            assert a.__dict__ == b.__dict__
    assert ours == theirs
    assert str(ours) == str(theirs)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ds=datasets())
def test_decode_and_encode_match_pydicom(ds: Dataset) -> None:
    for implicit in SYNTAXES:
        expected = pydicom_encode(copy.deepcopy(ds), implicit)
        assert try_encode(copy.deepcopy(ds), implicit) == expected
        ours, theirs = fast_decode(expected, implicit), pydicom_decode(expected, implicit)
        # re-encoding a decoded data set: raw elements go out as they came in
        assert try_encode(ours, implicit) == expected
        assert pydicom_encode(theirs, implicit) == expected
        assert_same(ours, theirs)
        # to the other syntax (raw elements converted first) through the bridge
        ts = bridge.EXPLICIT_VR_LITTLE_ENDIAN if implicit else bridge.IMPLICIT_VR_LITTLE_ENDIAN
        again = fast_decode(expected, implicit)
        assert bridge.encode_dataset(again, ts) == pydicom_encode(
            pydicom_decode(expected, implicit), not implicit
        )


def storage_commitment(n: int) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = "1.2.826.0.1.3680043.8.498.1"
    items = []
    for i in range(n):
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{i}.{i * 3}"
        items.append(item)
    ds.ReferencedSOPSequence = Sequence(items)
    return ds


@pytest.mark.parametrize("implicit", SYNTAXES)
def test_storage_commitment_1000_items(implicit: bool) -> None:
    ds = storage_commitment(1000)
    data = pydicom_encode(ds, implicit)
    assert try_encode(ds, implicit) == data
    ours, theirs = fast_decode(data, implicit), pydicom_decode(data, implicit)
    seq = ours.ReferencedSOPSequence
    assert len(seq) == 1000
    assert seq[999].ReferencedSOPInstanceUID == "1.2.826.0.1.3680043.8.498.999.2997"
    assert seq[0].ReferencedSOPClassUID.name == "CT Image Storage"
    assert_same(ours, theirs)
    assert try_encode(ours, implicit) == data


def test_new_dataset_is_a_fresh_dataset() -> None:
    a, b = new_dataset(), Dataset()
    assert type(a) is DecodedDataset and a == b and b == a
    # the same members, read; the instance holds only _dict (the rest are class
    # attributes until assigned, as the reader does on the items it makes)
    assert list(a.__dict__) == ["_dict"] and _state(a, b.__dict__) == _state(b)
    a.PatientName = "X^Y"
    a._read_charset = ["iso8859"]
    assert a._read_charset == ["iso8859"] and new_dataset()._read_charset == ""
    assert "PatientName" in a and "PatientName" not in new_dataset()
    c, d = new_dataset(), new_dataset()
    assert c._private_blocks is not d._private_blocks
    assert c._pixel_array_opts == {"use_pdh": False}
    c._pixel_array_opts["use_pdh"] = True  # a fresh copy each: the next is untouched
    assert d._pixel_array_opts == {"use_pdh": False}
    assert new_dataset()._pixel_array_opts == {"use_pdh": False}
    d._pixel_id = {"x": 1}  # assignment, as pydicom does, wins over the first-read copy
    assert d._pixel_id == {"x": 1} and new_dataset()._pixel_id == {}


def test_a_decoded_dataset_makes_its_pixel_caches_when_read() -> None:
    """pydicom's own uses of the caches work on a Dataset that never read them."""
    ds = new_dataset()
    assert "_private_blocks" not in ds.__dict__
    block = ds.private_block(0x0009, "ACME", create=True)  # reads _private_blocks
    block.add_new(0x01, "LO", "x")
    assert ds.private_block(0x0009, "ACME") is block and ds[0x00091001].value == "x"
    del ds[0x00090010]  # the creator: pydicom resets its block cache
    assert ds._private_blocks == {}
    copied = copy.deepcopy(new_dataset())
    assert type(copied) is DecodedDataset and copied._pixel_id == {}
    restored = pickle.loads(pickle.dumps(ds))
    assert restored == ds and restored._private_blocks == {}


_UIDS = st.lists(
    st.one_of(st.just("0"), st.integers(1, 10**12).map(str)), min_size=1, max_size=8
).map(".".join)


class _Str(str):
    """A str subclass that is neither str nor UID: never taken from the UI cache."""


@settings(max_examples=examples(200), deadline=None)
@given(
    values=st.lists(st.tuples(_UIDS, st.sampled_from([str, UID, _Str])), min_size=1, max_size=6),
    edits=st.lists(st.tuples(st.integers(0, 5), _UIDS), max_size=6),
)
def test_repeated_encoding_of_an_edited_dataset_matches_pydicom(
    values: list[tuple[str, type]], edits: list[tuple[int, str]]
) -> None:
    """The same Dataset encoded again after edits in place: the bytes follow the edits.

    UI elements are encoded once per (tag, value); here one Dataset (and its
    sequence item) is re-encoded after each edit of a value, both syntaxes.
    """
    tags = (0x00081150, 0x00081155, 0x00081195, 0x0020000D, 0x0020000E, 0x00080016)
    item = Dataset()
    ds = Dataset()
    for i, (value, kind) in enumerate(values):
        (item if i % 2 else ds).add_new(tags[i], "UI", kind(value))
    ds.ReferencedSOPSequence = Sequence([item])
    for index, value in [(0, ""), *edits]:
        if index:
            target = item if index % 2 else ds
            tag = tags[index]
            if tag in target:
                target[tag].value = value
            else:
                target.add_new(tag, "UI", value)
        for implicit in SYNTAXES:
            assert try_encode(ds, implicit) == pydicom_encode(copy.deepcopy(ds), implicit)


_UI_TAGS = (0x00080016, 0x00080018, 0x00081150, 0x00081155, 0x00081195, 0x0020000D, 0x00400000)
_SQ_TAGS = (0x00081115, 0x00081199, 0x00081198, 0x00400270)


@st.composite
def _plain_datasets(draw: st.DrawFn, depth: int = 0) -> Dataset:
    """UI elements (any order, str/UID/other values) and sequences of such items."""
    ds = Dataset()
    for tag in draw(st.lists(st.sampled_from(_UI_TAGS), unique=True, max_size=4)):
        value = draw(st.one_of(_UIDS, _UIDS.map(UID), st.just(""), st.just(None)))
        ds.add_new(tag, "UI", value)
    if depth < 2:
        for tag in draw(st.lists(st.sampled_from(_SQ_TAGS), unique=True, max_size=2)):
            items = draw(st.lists(_plain_datasets(depth + 1), max_size=3))
            for item in items:
                item.is_undefined_length_sequence_item = draw(st.booleans())
            ds.add_new(tag, "SQ", Sequence(items))
            ds[tag].is_undefined_length = draw(st.booleans())
    return ds


@settings(max_examples=examples(300), deadline=None)
@given(ds=_plain_datasets())
def test_ui_and_sequence_only_datasets_match_pydicom(ds: Dataset) -> None:
    """The shape of Storage Commitment requests (the encoder's short path) in both syntaxes."""
    for implicit in SYNTAXES:
        assert try_encode(ds, implicit) == pydicom_encode(copy.deepcopy(ds), implicit)


@pytest.mark.parametrize("implicit", SYNTAXES)
@pytest.mark.parametrize("count", [1, 2, 3])
def test_uid_only_items_in_any_insertion_order_encode_in_tag_order(
    implicit: bool, count: int
) -> None:
    """Elements added last-tag-first: the short paths (one, two elements) sort too."""
    tags = (0x00081150, 0x00081155, 0x00081160)[:count]
    for order in (tags, tags[::-1]):
        item = Dataset()
        for tag in order:
            item.add_new(tag, "UI", f"1.2.3.{tag & 0xFF}")
        ds = Dataset()
        ds.add_new(0x00081199, "SQ", Sequence([item]))
        ds.add_new(0x00081195, "UI", "1.2.3.4")  # after the sequence, tag before it
        assert try_encode(ds, implicit) == pydicom_encode(ds, implicit)

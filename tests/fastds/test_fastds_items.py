"""fastds on many small sequence items: the fast item path, shared caches, keyword reads."""

from __future__ import annotations

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .test_fastds_equivalence import assert_same, fast_decode, pydicom_decode, pydicom_encode

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

"""fastds on many small sequence items: the fast item path, shared caches, keyword reads."""

from __future__ import annotations

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

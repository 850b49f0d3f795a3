"""Encodings kept for Datasets encoded again (fastds/kept.py): never stale, and bounded.

Issue 25: a handler answering with the same Dataset object (or items of a stored
instance) has its bytes kept from the second encoding on. Whatever changes in it
afterwards (a value, an element, a VR, a length flag, an item, the character set
around it) must give pydicom's bytes of what it is now.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from aiodimse import caches
from aiodimse.fastds import encoder, kept, try_encode
from benchmarks import replies
from tests.examples import examples

from .test_fastds_equivalence import SYNTAXES, pydicom_encode

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _item(ds: Dataset) -> Dataset:
    return ds.ReferencedSOPSequence[0]  # type: ignore[no-any-return]


def _new_item(ds: Dataset) -> None:
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    ds.ReferencedSOPSequence.append(item)


def _shared_item_in_a_utf8_parent(ds: Dataset) -> None:
    other = Dataset()
    other.SpecificCharacterSet = "ISO_IR 192"
    other.ReferencedSOPSequence = [_item(ds)]
    try_encode(other, True)  # the item encoded under another character set meanwhile


_CHANGES: dict[str, Callable[[Dataset], object]] = {
    "value": lambda ds: setattr(ds, "RetrieveAETitle", "OTHER_AE"),
    "same text, new object": lambda ds: setattr(ds, "RetrieveAETitle", "".join("BENCH_SCP")),
    "element added": lambda ds: setattr(ds, "PatientID", "P1"),
    "element deleted": lambda ds: delattr(ds, "RetrieveAETitle"),
    "element replaced": lambda ds: ds.add_new(0x00080054, "AE", "BENCH_SCP"),
    "VR": lambda ds: setattr(ds[0x00080054], "VR", "LO"),
    "undefined length": lambda ds: setattr(ds[0x00081199], "is_undefined_length", True),
    "item value": lambda ds: setattr(_item(ds), "ReferencedSOPInstanceUID", "1.2.3"),
    "item's element added": lambda ds: setattr(_item(ds), "PatientID", "P2"),
    "item appended": _new_item,
    "items emptied": lambda ds: ds.ReferencedSOPSequence.clear(),
    "item undefined length": lambda ds: setattr(
        _item(ds), "is_undefined_length_sequence_item", True),
    "sequence replaced": lambda ds: setattr(ds, "ReferencedSOPSequence", [Dataset()]),
    "character set": lambda ds: setattr(ds, "SpecificCharacterSet", "ISO_IR 192"),
    "multi-valued": lambda ds: setattr(ds, "RetrieveAETitle", ["A", "B"]),
    "item shared elsewhere": _shared_item_in_a_utf8_parent,
    "nothing": lambda ds: None,
}


@settings(max_examples=examples(60), deadline=None)
@given(changes=st.lists(st.sampled_from(sorted(_CHANGES)), min_size=1, max_size=4),
       implicit=st.sampled_from(SYNTAXES))
def test_a_kept_encoding_follows_every_change(changes: list[str], implicit: bool) -> None:
    ds = replies.action_reply()
    for _ in range(3):  # kept from the second time
        assert try_encode(ds, implicit) == pydicom_encode(copy.deepcopy(ds), implicit)
    for name in changes:
        # (a change to what an earlier one removed changes nothing)
        with contextlib.suppress(AttributeError, KeyError, IndexError):
            _CHANGES[name](ds)
        for _ in range(2):
            assert try_encode(ds, implicit) == pydicom_encode(copy.deepcopy(ds), implicit)


def _is_kept(ds: Dataset) -> bool:
    """Whether the implicit-syntax table keeps ``ds`` itself (by its weak reference: an
    id alone may be a dead data set's, reused)."""
    return any(entry.ref() is ds for entry in encoder._IMPLICIT.kept.values())


@pytest.fixture
def caches_on() -> Iterator[None]:
    """Caches on for the test, then the switch as the run set it."""
    was = caches.enabled
    caches.enable()
    yield
    if not was:
        caches.disable()


def test_the_same_reply_is_kept_and_answered_from_it(caches_on: None) -> None:
    ds = replies.action_reply()
    table = encoder._IMPLICIT.kept
    first = try_encode(ds, True)
    assert id(ds) not in table  # once: only remembered weakly
    assert try_encode(ds, True) == first
    assert id(ds) in table and id(_item(ds)) in table
    calls: list[object] = []
    original = encoder._Encoder.dataset

    def counted(self: encoder._Encoder, *args: object) -> bytes:
        calls.append(args)
        return original(self, *args)  # type: ignore[arg-type]

    try:
        encoder._Encoder.dataset = counted  # type: ignore[method-assign]
        assert try_encode(ds, True) == first
    finally:
        encoder._Encoder.dataset = original  # type: ignore[method-assign]
    assert calls == []


def test_a_mutable_value_is_never_kept() -> None:
    ds = replies.action_reply()
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    assert type(ds.ImageType) is MultiValue
    for _ in range(3):
        try_encode(ds, True)
    assert not _is_kept(ds)
    ds.ImageType.append("AXIAL")  # in place: the same value object
    assert try_encode(ds, True) == pydicom_encode(copy.deepcopy(ds), True)


def test_the_tables_are_bounded(caches_on: None) -> None:
    big = Dataset()
    big.PatientComments = "x" * (kept.KEPT_BYTES + 2)
    for _ in range(3):
        try_encode(big, True)
    assert not _is_kept(big)
    held = [replies.action_reply() for _ in range(kept.KEPT_MAX * 2)]
    for ds in held:
        for _ in range(2):
            try_encode(ds, True)
    assert len(encoder._IMPLICIT.kept) <= kept.KEPT_MAX
    for _ in range(kept.SEEN_MAX + 10):
        try_encode(replies.action_reply(), True)  # a new reply each time
    assert len(encoder._IMPLICIT.seen) <= kept.SEEN_MAX

"""Encodings kept for the Dataset objects a program encodes again (the same reply each time).

A handler that answers every request with one Dataset made at start-up (an Action
Reply, say), or with sequence items of a stored instance, has the same objects encoded
per response. The second time an object is encoded, its bytes are kept with what they
were made from: its element objects in order, each one's value object, VR and length
flag, and for a sequence its item objects (each kept itself) and their length flags.
An encoding reads the bytes back only while all of that is the same, by identity (a
kept entry holds those objects, so none can be freed and another take its place).
Values must be of immutable types (a str, a UID, a PersonName, bytes, an int, a
float, None; a sequence's items are checked one by one): a Dataset holding any other
(a MultiValue, an IS, a DSfloat) is not kept. The Dataset itself is held weakly; a
kept entry's bytes are at most ``KEPT_BYTES``. A Dataset encoded once and dropped (a
new reply per request) costs a weak reference; the tag a DataElement carries is
pydicom's dictionary key for it and is not compared.

Only plain DataElements with a two-letter VR are kept, so pydicom's conversion and
ambiguous-VR correction (what ``corrected`` and the data set's read attributes decide)
change nothing in them; the parent's character set is compared at the top.
"""

from __future__ import annotations

import weakref
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID
from pydicom.valuerep import PersonName

from .. import caches

__all__ = ["KEPT_BYTES", "KEPT_MAX", "SEEN_MAX", "Kept", "keep", "kept_encoding"]

KEPT_MAX = 64
"""Most Datasets kept per syntax (the table is emptied when full)."""
KEPT_BYTES = 16 * 1024
"""Most bytes of one kept encoding: a reply, not a C-STORE data set (64 x 16 KiB: 1 MiB)."""
SEEN_MAX = 1024
"""Most Datasets remembered (weakly) as encoded once, waiting for a second time."""

_IMMUTABLE = frozenset({str, UID, PersonName, bytes, int, float, type(None)})


class Kept:
    """One Dataset's encoding and the snapshot it holds for."""

    __slots__ = ("data", "parent", "ref", "sequences", "state")

    def __init__(self, ref: weakref.ref[Dataset], parent: Any, data: bytes,
                 elements: tuple[Any, ...],
                 sequences: tuple[tuple[Sequence, list[Dataset], tuple[Any, ...]], ...]
                 ) -> None:
        self.ref = ref
        self.parent = parent
        self.data = data
        # per element in the data set's order: (element, value, VR, undefined length)
        self.state = tuple((e, e._value, e.VR, e.is_undefined_length) for e in elements)
        # per sequence: (the Sequence, a copy of its items list, their undefined flags)
        self.sequences = sequences


def _holds(table: dict[int, Kept], kept: Kept, ds: Dataset) -> bool:
    """Whether ``ds`` is still what ``kept`` was made from (its items too).

    Compared by identity in a plain loop: cheaper than building tuples to compare.
    """
    if kept.ref() is not ds:
        return False
    elems = ds._dict
    state = kept.state
    if len(elems) != len(state):
        return False
    for elem, (k_elem, value, vr, undefined) in zip(elems.values(), state):  # noqa: B905 - same lengths
        if (elem is not k_elem or elem._value is not value or elem.VR is not vr
                or elem.is_undefined_length is not undefined):
            return False
    for seq, items, undefined in kept.sequences:
        now = seq._list
        if len(now) != len(items):
            return False
        for item, k_item, item_undefined in zip(now, items, undefined):  # noqa: B905 - same lengths
            if (item is not k_item
                    or item.is_undefined_length_sequence_item is not item_undefined):
                return False
            sub = table.get(id(item))
            if sub is None or not _holds(table, sub, item):
                return False
    return True


def kept_encoding(table: dict[int, Kept], ds: Dataset, parent: Any) -> bytes | None:
    """The kept bytes of ``ds`` encoded under ``parent`` (its parent's charset), if they hold."""
    kept = table.get(id(ds))
    if kept is None or kept.parent != parent:
        return None
    try:
        return kept.data if _holds(table, kept, ds) else None
    except AttributeError:  # an item without pydicom's members: not the one kept
        return None


def keep(table: dict[int, Kept], seen: dict[int, weakref.ref[Dataset]], ds: Dataset,
         parent: Any, data: bytes) -> None:
    """``ds`` was encoded to ``data``: keep it if this is its second time and it may be.

    Its sequences' items must be kept already (``items`` keeps them first).
    """
    if not caches.enabled or len(data) > KEPT_BYTES:
        return
    key = id(ds)
    ref = seen.get(key)
    if ref is None or ref() is not ds:
        try:
            ref = weakref.ref(ds)
        except TypeError:  # a subclass without weak references
            return
        if len(seen) >= SEEN_MAX:
            seen.clear()
        seen[key] = ref
        return
    elems = ds._dict
    elements = tuple(elems.values())
    sequences = []
    try:
        for elem in elements:
            if type(elem) is not DataElement or len(elem.VR) != 2:
                return
            value = elem._value
            if type(value) is Sequence and elem.VR == "SQ":
                items = tuple(value._list)
                for item in items:  # kept by this encoding (or before), and still so
                    sub = table.get(id(item))
                    if sub is None or not _holds(table, sub, item):
                        return
                sequences.append((value, list(items), tuple(
                    item.is_undefined_length_sequence_item for item in items)))
            elif type(value) not in _IMMUTABLE:
                return
    except AttributeError:  # an item without pydicom's members
        return
    if len(table) >= KEPT_MAX:
        table.clear()
    table[key] = Kept(ref, parent, data, elements, tuple(sequences))

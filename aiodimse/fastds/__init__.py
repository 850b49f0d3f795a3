"""Fast, exact codec between DICOM data set bytes and pydicom Datasets.

:func:`try_decode` and :func:`try_encode` reproduce pydicom's ``read_dataset`` and
``write_dataset`` for Implicit and Explicit VR Little Endian; both return ``None`` when
the input is outside what they reproduce exactly, and the caller then uses pydicom.
:func:`new_dataset` is ``Dataset()`` without pydicom's ``__setattr__`` cost.
"""

from __future__ import annotations

from ._proto import (
    ELEMENT_ATTRIBUTES,
    DecodedDataset,
    DeferredDataset,
    cached_tag,
    deferred_dataset,
    elements_by_stores,
    new_dataset,
    new_element,
    read_from_source,
)
from .decoder import MAX_DEPTH, try_decode
from .encoder import try_encode

__all__ = [
    "ELEMENT_ATTRIBUTES",
    "MAX_DEPTH",
    "DecodedDataset",
    "DeferredDataset",
    "cached_tag",
    "deferred_dataset",
    "elements_by_stores",
    "new_dataset",
    "new_element",
    "read_from_source",
    "try_decode",
    "try_encode",
]

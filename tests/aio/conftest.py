"""Fixtures of the asyncio tests."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

import aiodimse.association as association_module

from ._helpers import RawDataset


@pytest.fixture
def raw_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a ``RawDataset`` go on the wire as its raw bytes (to send broken data sets)."""
    real = association_module.encode_dataset

    def encode(ds: Dataset, transfer_syntax: str, **kwargs: Any) -> bytes:
        if isinstance(ds, RawDataset):
            return ds.raw
        return real(ds, transfer_syntax, **kwargs)

    monkeypatch.setattr(association_module, "encode_dataset", encode)

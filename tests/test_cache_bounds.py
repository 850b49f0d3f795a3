"""Module-level caches hold a bounded number of bytes, whatever values pass through (issue 18).

On bf678e1 the UID caches were bounded by entries only: 250 accepted 1 MiB UIDs left
505 MiB behind after every association closed. Each cache that a peer's values can
reach is filled here with long distinct values; what it holds is counted in bytes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset

from aiodimse import scu
from aiodimse.datasets import encode_dataset
from aiodimse.dimse import NActionRSP, NEventReportRQ, commands, encode_command
from aiodimse.fastds import encoder
from aiodimse.requests import _UIDS, status_dataset

LONG = 20_000  # characters per value; 300 of them would be 6 MB per cache


def _size(entries: Iterable[Any]) -> int:
    total = 0
    for item in entries:
        if isinstance(item, tuple):
            total += _size(item)
        elif isinstance(item, (str, bytes)):
            total += len(item)
    return total


def _dict_bytes(table: dict[Any, Any]) -> int:
    return _size(table.keys()) + _size(table.values())


def _long_uid(i: int) -> str:
    return f"1.2.{i}." + "3" * LONG


def test_command_encoder_ui_caches() -> None:
    for i in range(300):
        rsp = NActionRSP(MessageIDBeingRespondedTo=1, Status=0, AffectedSOPClassUID=_long_uid(i),
                         AffectedSOPInstanceUID=_long_uid(i))
        encode_command(rsp, has_dataset=False)
        rq = NEventReportRQ(MessageID=1, AffectedSOPClassUID="1.2", EventTypeID=1,
                            AffectedSOPInstanceUID=_long_uid(i))
        encode_command(rq, has_dataset=True)
    caches = [value for fn in commands._ENCODERS.values()
              for name, value in fn.__globals__.items() if name.startswith("_cache_")]
    assert caches
    assert sum(_dict_bytes(c) for c in caches) < 2_000_000


def test_data_set_encoder_caches() -> None:
    for i in range(300):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100" + ("x" * LONG if i % 2 else "")  # odd: unknown
        ds.SOPInstanceUID = _long_uid(i)
        item = Dataset()
        item.ReferencedSOPInstanceUID = _long_uid(i + 1000)
        ds.ReferencedSOPSequence = [item]
        for ts in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"):
            encode_dataset(ds, ts)
            plain = Dataset()
            plain.ReferencedSOPInstanceUID = _long_uid(i + 2000)
            encode_dataset(plain, ts)
    held = (_dict_bytes(encoder._IMPLICIT.ui_cache) + _dict_bytes(encoder._EXPLICIT.ui_cache)
            + _dict_bytes(encoder._CHARSETS))
    assert held < 600_000
    assert len(encoder._CHARSETS) <= 64


def test_status_dataset_uids() -> None:
    for i in range(300):
        rsp = NActionRSP(MessageIDBeingRespondedTo=1, Status=0, AffectedSOPClassUID="1.2",
                         AffectedSOPInstanceUID=_long_uid(i))
        ds = status_dataset(rsp)
        assert ds.AffectedSOPInstanceUID == _long_uid(i)
    assert _dict_bytes(_UIDS) < 200_000


def test_scu_command_templates() -> None:
    for i in range(300):
        scu._n_action_command("1.2", _long_uid(i), 1, True)
    assert _dict_bytes({k[1:3]: None for k in scu._TEMPLATES}) < 200_000
    assert sys.getsizeof(scu._TEMPLATES) < 100_000

"""store_scp.FileSink: fragments written by writev, and screening from the first bytes."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydicom.dataset import Dataset

from aiodimse import store_scp
from aiodimse.datasets import encode_dataset
from aiodimse.dimse.messages import CStoreRQ

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


def _sink(tmp_path: Path, pieces: list[bytes]) -> store_scp.FileSink:
    sink = store_scp.FileSink(str(tmp_path), b"HEAD", 1 << 30)
    for piece in pieces:
        sink.write(memoryview(piece))
    sink.finish()
    return sink


def test_short_writes_are_written_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.writev may write less than it was given: the rest follows, in order."""
    real = os.writev
    calls = []

    def short(fd: int, parts: list[bytes]) -> int:
        calls.append(len(parts))
        data = b"".join(parts)
        return real(fd, [data[:len(data) // 2 + 1]])  # about half, each time

    monkeypatch.setattr(store_scp.os, "writev", short)
    pieces = [bytes([n]) * 3000 for n in range(100)]  # 300 kB: past the 256 kB mark
    sink = _sink(tmp_path, pieces)
    assert sink.error is None and sink.path is not None
    assert sink.path.read_bytes() == b"HEAD" + b"".join(pieces)
    assert max(calls) <= 256  # held parts per write stay bounded


def _screened(tmp_path: Path, ds: Dataset, instance: str) -> tuple[int, str] | None:
    data = encode_dataset(ds, EXPLICIT)
    sink = _sink(tmp_path, [data[i:i + 16372] for i in range(0, len(data), 16372)])
    rq = CStoreRQ(MessageID=1, Priority=0, AffectedSOPClassUID=CT,
                  AffectedSOPInstanceUID=instance)
    received = SimpleNamespace(message=rq)
    return store_scp._screen(received, SimpleNamespace(transfer_syntax=EXPLICIT),  # type: ignore[arg-type]
                             sink)


@pytest.mark.parametrize("before", [0, 6000])  # UIDs in the first 4 kB, or past them
def test_uids_past_the_first_bytes_are_read_from_the_file(tmp_path: Path, before: int) -> None:
    ds = Dataset()
    if before:
        ds.add_new(0x00080008, "UT", "x" * before)  # (a long value ahead of the UIDs)
    ds.SOPClassUID, ds.SOPInstanceUID = CT, "1.2.3.4"
    assert _screened(tmp_path, ds, "1.2.3.4") is None
    refused = _screened(tmp_path, ds, "1.2.3.5")
    assert refused is not None and refused[0] == store_scp.DOES_NOT_MATCH

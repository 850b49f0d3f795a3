"""store_scp.FileSink: fragments written by writev, and screening from the first bytes."""

from __future__ import annotations

import os
import threading
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


def _made(spool: store_scp.Spool) -> tuple[int, str]:
    """The spool's spare, once the maker thread has made it."""
    spare = spool.spare
    assert spare is not None and spare.ready.acquire(timeout=10)
    spare.ready.release()
    assert spare.made is not None
    return spare.made


def _gone(path: str) -> bool:
    for _ in range(500):  # (removed by the maker thread)
        if not os.path.exists(path):
            return True
        threading.Event().wait(0.01)
    return False


def test_a_spool_makes_the_next_file_ahead_from_the_second_on(tmp_path: Path) -> None:
    spool = store_scp.Spool(str(tmp_path))
    first = spool.take()
    assert spool.spare is None  # a single C-STORE makes no spare
    second = spool.take()
    ahead = _made(spool)
    third = spool.take()
    assert third == ahead
    fourth_ahead = _made(spool)
    names = {first[1], second[1], third[1], fourth_ahead[1]}
    assert len(names) == 4 and all(os.stat(n).st_mode & 0o777 == 0o600 for n in names)
    spool.close()
    assert spool.spare is None and _gone(fourth_ahead[1])
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(n) for n in names
                                                  if n != fourth_ahead[1])
    for fd, _name in (first, second, third):
        os.close(fd)


def test_a_spare_not_yet_made_is_kept_for_later_waited_for_or_never_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = store_scp.spool_file

    def slow(directory: str | None) -> tuple[int, str]:
        if threading.current_thread().name == "aiodimse-spool" and directory == str(first):
            assert release.wait(10)
        return real(directory)

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.setattr(store_scp, "spool_file", slow)
    spool, other = store_scp.Spool(str(first)), store_scp.Spool(str(second))
    taken = [spool.take(), spool.take(), other.take(), other.take()]
    pending, queued = spool.spare, other.spare
    assert pending is not None and queued is not None
    taken.append(spool.take())  # not waited for: made at once, the spare kept
    assert spool.spare is pending and len(os.listdir(first)) == 3
    other.close()  # its spare waits behind the one being made: never made
    threading.Timer(0.05, release.set).start()
    spool.close()  # waits for the one being made, then removes it
    assert len(os.listdir(first)) == 3 and pending.made is None
    after = store_scp.Spool(str(second))
    taken += [after.take(), after.take()]
    _made(after)  # (the maker has gone past the dropped one)
    after.close()
    assert queued.made is None and len(os.listdir(second)) == 4
    for fd, _name in taken:
        os.close(fd)


def test_a_spool_that_cannot_make_files_fails_the_sink(tmp_path: Path) -> None:
    spool = store_scp.Spool(str(tmp_path / "missing"))
    sink = store_scp.FileSink(None, b"HEAD", 1 << 30, spool)
    assert sink.error is not None and sink.path is None and sink.fd is None
    sink.write(b"\0\0")
    sink.finish()
    assert sink.size == 2 and os.listdir(tmp_path) == []

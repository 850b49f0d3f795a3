"""Micro-benchmark: data set decode/encode, pydicom's reader/writer against aiodimse.fastds.

Uses the storage-commitment N-ACTION information (Transaction UID plus a Referenced SOP
Sequence of 1 / 10 / 1000 items). The pydicom side is what pynetdicom does per
message: ``read_dataset`` / ``write_dataset`` on a DicomBytesIO. Each pair is measured
back to back, interleaved, in process CPU time, and the median of the repeats is
reported, so the ratios stay meaningful on a shared, noisy machine.

    python3 benchmarks/micro_dataset.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from aiodimse.fastds import try_decode, try_encode

__all__ = ["main", "storage_commitment"]

IMPLICIT = True  # Implicit VR Little Endian: what most N-ACTION contexts carry


def storage_commitment(n: int) -> Dataset:
    """The Storage Commitment Action Information with ``n`` referenced instances."""
    ds = Dataset()
    ds.TransactionUID = "1.2.826.0.1.3680043.8.498.17761123456789012345"
    items = []
    for i in range(n):
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{100000 + i}.{i * 7919}"
        items.append(item)
    ds.ReferencedSOPSequence = Sequence(items)
    return ds


def _pydicom_encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = IMPLICIT
    fp.is_little_endian = True
    write_dataset(fp, ds)
    return bytes(fp.getvalue())


def _pydicom_decode(data: bytes) -> Dataset:
    return read_dataset(io.BytesIO(data), IMPLICIT, True)


def _fast_decode(data: bytes) -> Dataset:
    ds = try_decode(data, IMPLICIT)
    assert ds is not None
    return ds


def _fast_encode(ds: Dataset) -> bytes:
    data = try_encode(ds, IMPLICIT)
    assert data is not None
    return data


def _read_all(ds: Dataset) -> int:
    """The row-2 handler: touch every referenced instance's two UIDs."""
    n = 0
    for item in ds.ReferencedSOPSequence:
        n += len(item.ReferencedSOPClassUID) + len(item.ReferencedSOPInstanceUID)
    return n


def _time(fn: Callable[[], object], budget: float) -> float:
    """CPU seconds per call, averaged over as many calls as fit in ``budget``.

    Process CPU time, not wall time: on a shared machine the wall clock mostly
    measures the other tenants.
    """
    calls = 0
    clock = time.process_time
    start = clock()
    while True:
        fn()
        calls += 1
        elapsed = clock() - start
        if elapsed >= budget:
            return elapsed / calls


def _pair(
    theirs: Callable[[], object], ours: Callable[[], object], repeats: int, budget: float
) -> tuple[float, float]:
    """Median µs per call of each, measured interleaved."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        a.append(_time(theirs, budget))
        b.append(_time(ours, budget))
    return statistics.median(a) * 1e6, statistics.median(b) * 1e6


def main(argv: list[str] | None = None) -> int:
    """Run the table; ``--quick`` uses fewer, shorter repeats."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    args = parser.parse_args(argv)
    repeats, budget = (3, 0.1) if args.quick else (7, 0.3)

    print("CPU µs per operation, median of interleaved repeats")
    print(f"{'case':<34} {'pydicom µs':>12} {'fastds µs':>11} {'ratio':>7}")
    for n in (1, 10, 1000):
        ds = storage_commitment(n)
        data = _pydicom_encode(ds)
        assert _fast_encode(ds) == data
        assert _fast_decode(data) == _pydicom_decode(data)
        rows: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
            (
                f"decode {n} items",
                lambda data=data: _pydicom_decode(data),
                lambda data=data: _fast_decode(data),
            ),
            (
                f"encode {n} items",
                lambda ds=ds: _pydicom_encode(ds),
                lambda ds=ds: _fast_encode(ds),
            ),
            (
                f"decode + read all, {n} items",
                lambda data=data: _read_all(_pydicom_decode(data)),
                lambda data=data: _read_all(_fast_decode(data)),
            ),
        ]
        for name, theirs, ours in rows:
            t_theirs, t_ours = _pair(theirs, ours, repeats, budget)
            ratio = t_theirs / t_ours
            print(f"{name:<34} {t_theirs:>12.1f} {t_ours:>11.1f} {ratio:>6.1f}x")
    decoded = _fast_decode(_pydicom_encode(storage_commitment(1000)))
    _read_all(decoded)
    reads = statistics.median(_time(lambda: _read_all(decoded), budget) for _ in range(repeats))
    print(
        f"\nthe reads alone (2000 pydicom attribute reads on a decoded Dataset): "
        f"{reads * 1e6:.1f} µs, a floor for 'decode + read all' whoever decodes"
    )
    print(
        "\ntargets: decode + read all of 1000 items >= 10x; encode of 10 items >= 5x"
        "\n(pydicom's read_dataset is lazy: its 'decode' converts nothing until read)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

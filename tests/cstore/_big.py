"""A large instance written to disk piece by piece (never whole in memory), and a
storage server in a subprocess that reports its peak memory growth."""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian

from ._files import CT, instance

PIECE = 4 << 20


def write_big(path: Path, pixel_bytes: int, uid: str | None = None) -> str:
    """A CT instance of ``pixel_bytes`` (a multiple of 2 MiB) bytes of Pixel Data, in
    frames of 1024 x 1024 16-bit pixels; its SOP Instance UID."""
    ds = instance(CT, pixels=2, uid=uid, syntax=ExplicitVRLittleEndian)
    del ds.PixelData
    ds.Rows = ds.Columns = 1024
    ds.NumberOfFrames = pixel_bytes // (2 << 20)
    ds.save_as(path, enforce_file_format=True)
    piece = bytes(range(256)) * (PIECE // 256)
    with open(path, "ab") as fp:
        fp.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes))
        left = pixel_bytes
        while left:
            n = min(left, PIECE)
            fp.write(piece[:n])
            left -= n
    return str(ds.SOPInstanceUID)

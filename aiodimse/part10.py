"""Part 10 files: their file meta information (group 0002) read without pydicom.

Sending a file and filing a received one each need only a few of its values (the
transfer syntax, the SOP UIDs, where the data set starts); pydicom's ``dcmread``
builds and validates a whole ``FileMetaDataset`` for them, which costs more than
the rest of reading the file's first elements.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

__all__ = ["read_meta"]

_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC",
                       b"UN", b"UR", b"UT", b"UV"))


def read_meta(fp: BinaryIO) -> tuple[int, dict[int, str]] | None:
    """(where the data set starts, {element: text} of the group 0002 elements); the
    file left at the data set's start. None for a file without ``DICM``."""
    fp.seek(0)
    if fp.read(132)[128:] != b"DICM":
        return None
    values: dict[int, str] = {}
    while True:
        start = fp.tell()
        header = fp.read(8)
        if len(header) < 8:
            return None
        group, element = struct.unpack("<HH", header[:4])
        if group != 0x0002:
            fp.seek(start)
            return start, values
        vr = header[4:6]
        if vr in _LONG_VRS:
            length = struct.unpack("<I", fp.read(4))[0]
        else:
            length = struct.unpack("<H", header[6:8])[0]
        values[element] = fp.read(length).decode("ascii", "replace").rstrip("\0 ")

"""Filling the instance index from DICOM files on disk (``--index-dir``, ``aiodimse index``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from ..logs import get_logger
from .db import Store

__all__ = ["read_uids", "scan", "index_paths"]

log = get_logger("aiodimse.store")

_TAGS = ["SOPClassUID", "SOPInstanceUID"]


def read_uids(path: str | Path) -> tuple[str, str] | None:
    """(SOP Class UID, SOP Instance UID) of a DICOM file, or None if it is not one.

    Only the two attributes are read (``specific_tags``, no pixel data), so indexing
    a large archive reads little more than each file's header.
    """
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        log.debug("not indexed: %s: %s", path, exc)
        return None
    meta = getattr(ds, "file_meta", None)
    sop_class = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    sop_instance = ds.get("SOPInstanceUID") or (
        meta.get("MediaStorageSOPInstanceUID") if meta else None
    )
    if not sop_class or not sop_instance:
        return None
    return str(sop_class), str(sop_instance)


def scan(paths: Iterable[str | Path]) -> Iterator[tuple[str, str, str]]:
    """(class, instance, path) for every DICOM file under ``paths`` (files or directories)."""
    for top in paths:
        top_path = Path(top)
        files: Iterable[Path]
        if top_path.is_dir():
            files = (
                Path(root) / name
                for root, _dirs, names in os.walk(top_path)
                for name in sorted(names)
            )
        else:
            files = [top_path]
        for file in files:
            uids = read_uids(file)
            if uids is not None:
                yield uids[0], uids[1], str(file.resolve())


def index_paths(store: Store, paths: Iterable[str | Path], now: float, batch: int = 500) -> int:
    """Index every DICOM file under ``paths``; returns how many were indexed."""
    total = 0
    rows: list[tuple[str, str, str | None]] = []
    for row in scan(paths):
        rows.append(row)
        if len(rows) >= batch:
            total += store.add_instances(rows, now)
            rows = []
    if rows:
        total += store.add_instances(rows, now)
    return total

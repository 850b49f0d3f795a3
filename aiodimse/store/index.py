"""Filling the instance index from DICOM files on disk (``--index-dir``, ``aiodimse index``)."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from ..logs import get_logger
from .interface import InstanceIndex

__all__ = ["read_uids", "scan", "index_paths", "ScanReport", "looks_like_bare_dataset"]

log = get_logger("aiodimse.store")

_TAGS = ["SOPClassUID", "SOPInstanceUID"]
_BARE_GROUPS = (0x0002, 0x0008)


@dataclass
class ScanReport:
    """What a scan found, and what it passed over with the reason, for one line of summary."""

    files: int = 0
    indexed: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> paths
    missing: list[str] = field(default_factory=list)  # named paths that do not exist
    named_not_dicom: list[str] = field(default_factory=list)  # named files passed over

    def skip(self, path: str, reason: str, *, named: bool) -> None:
        self.skipped.setdefault(reason, []).append(path)
        if named:
            self.named_not_dicom.append(path)
        log.info("skipped %s: %s", path, reason)

    @property
    def skipped_count(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    @property
    def complete(self) -> bool:
        """Every path the user named was there and, if a file, read as DICOM."""
        return not self.missing and not self.named_not_dicom

    def summary(self, verb: str = "indexed") -> str:
        text = f"{verb} {self.indexed}, skipped {self.skipped_count}"
        if self.skipped:
            why = ", ".join(f"{len(v)} {reason}" for reason, v in sorted(self.skipped.items()))
            text += f" ({why})"
        if self.missing:
            text += f"; not found: {', '.join(self.missing)}"
        return text


def looks_like_bare_dataset(head: bytes) -> bool:
    """A data set written without the 128-byte preamble and "DICM" (old archives):
    the file starts with an element of group 0002 or 0008, little endian."""
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    return group in _BARE_GROUPS


def _read(path: Path) -> tuple[str, str] | str:
    """(class, instance), or why the file is not an indexable instance."""
    try:
        try:
            ds = dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
        except InvalidDicomError:
            with path.open("rb") as f:
                head = f.read(8)
            if not looks_like_bare_dataset(head):
                return "not DICOM"
            ds = dcmread(path, stop_before_pixels=True, specific_tags=_TAGS, force=True)
    except PermissionError:
        return "unreadable (permission denied)"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    except (InvalidDicomError, ValueError, EOFError, KeyError, TypeError) as exc:
        log.debug("cannot read %s: %s", path, exc)
        return "not readable as DICOM"
    meta = getattr(ds, "file_meta", None)
    sop_class = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    sop_instance = ds.get("SOPInstanceUID") or (
        meta.get("MediaStorageSOPInstanceUID") if meta else None
    )
    if not sop_class or not sop_instance:
        return "no SOP Class or Instance UID (not an instance)"
    return str(sop_class), str(sop_instance)


def read_uids(path: str | Path) -> tuple[str, str] | None:
    """(SOP Class UID, SOP Instance UID) of a DICOM file, or None if it is not one.

    Only the two attributes are read (``specific_tags``, no pixel data), so indexing
    a large archive reads little more than each file's header. Files without the
    preamble (a bare data set starting with group 0002 or 0008) are read too.
    """
    found = _read(Path(path))
    return found if isinstance(found, tuple) else None


def scan(paths: Iterable[str | Path], report: ScanReport | None = None
         ) -> Iterator[tuple[str, str, str]]:
    """(class, instance, path) for every DICOM file under ``paths`` (files or directories).

    What is passed over, and why, goes into ``report`` (and the log at INFO).
    """
    report = ScanReport() if report is None else report
    for top in paths:
        top_path = Path(top)
        files: Iterable[Path]
        named = not top_path.is_dir()
        if not top_path.exists():
            report.missing.append(str(top))
            log.warning("%s does not exist", top)
            continue
        if top_path.is_dir():
            files = (
                Path(root) / name
                for root, _dirs, names in os.walk(top_path, onerror=_walk_error(report))
                for name in sorted(names)
            )
        else:
            files = [top_path]
        for file in files:
            report.files += 1
            found = _read(file)
            if isinstance(found, str):
                report.skip(str(file), found, named=named)
                continue
            report.indexed += 1
            yield found[0], found[1], str(file.resolve())


def _walk_error(report: ScanReport) -> Callable[[OSError], None]:
    def error(exc: OSError) -> None:
        report.skip(str(exc.filename), f"unreadable folder ({exc.strerror or exc})",
                    named=False)
    return error


async def index_paths(index: InstanceIndex, paths: Iterable[str | Path], now: float,
                      batch: int = 500, report: ScanReport | None = None) -> int:
    """Index every DICOM file under ``paths``; returns how many were indexed.

    The files are read on a worker thread, ``batch`` at a time, so the event loop
    goes on while a large archive is scanned.
    """
    total = 0
    found = scan(paths, report)
    while True:
        rows: list[tuple[str, str, str | None]] = await asyncio.to_thread(
            lambda: list(itertools.islice(found, batch)))
        if not rows:
            return total
        total += await index.add_instances(rows, now)

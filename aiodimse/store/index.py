"""Filling the instance index from DICOM files on disk (``--index-dir``, ``aiodimse index``)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from ..logs import get_logger
from .interface import ArchiveIndex
from .records import RECORD_TAGS, InstanceRecord, record_values

__all__ = ["read_uids", "scan", "index_paths", "ScanReport", "looks_like_bare_dataset",
           "TEMP_PREFIX", "INCOMING"]

log = get_logger("aiodimse.store")

_TAGS = RECORD_TAGS  # the two UIDs, and what Query/Retrieve asks (records.KEYS)
_BARE_GROUPS = (0x0002, 0x0008)
TEMP_PREFIX = ".aiodimse-tmp-"  # the archive writer's files being written: not walked
INCOMING = ".incoming"  # the archive's folder of instances being received: not walked


@dataclass
class ScanReport:
    """What a scan found, and what it passed over with the reason, for one line of summary."""

    files: int = 0
    indexed: int = 0
    unchanged: int = 0  # indexed before, size and mtime the same: not read again
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> paths
    missing: list[str] = field(default_factory=list)  # named paths that do not exist
    named_not_dicom: list[str] = field(default_factory=list)  # named files passed over
    quiet: bool = False  # log each file passed over at DEBUG, not INFO (a rescan)

    def skip(self, path: str, reason: str, *, named: bool) -> None:
        self.skipped.setdefault(reason, []).append(path)
        if named:
            self.named_not_dicom.append(path)
        log.log(logging.DEBUG if self.quiet else logging.INFO, "skipped %s: %s", path, reason)

    @property
    def skipped_count(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    @property
    def complete(self) -> bool:
        """Every path the user named was there and, if a file, read as DICOM."""
        return not self.missing and not self.named_not_dicom

    def summary(self, verb: str = "indexed") -> str:
        text = f"{verb} {self.indexed}, skipped {self.skipped_count}"
        if self.unchanged:
            text = f"{verb} {self.indexed}, unchanged {self.unchanged}, " \
                   f"skipped {self.skipped_count}"
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


_Found = tuple[str, str, str, dict[str, str]]  # class, instance, transfer syntax, attrs


def _read(path: Path) -> _Found | str:
    """(class, instance, transfer syntax, Q/R attributes), or why the file is not an
    indexable instance."""
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
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta else ""
    return str(sop_class), str(sop_instance), syntax, record_values(ds)


def read_uids(path: str | Path) -> tuple[str, str] | None:
    """(SOP Class UID, SOP Instance UID) of a DICOM file, or None if it is not one.

    Only the two attributes are read (``specific_tags``, no pixel data), so indexing
    a large archive reads little more than each file's header. Files without the
    preamble (a bare data set starting with group 0002 or 0008) are read too.
    """
    found = _read(Path(path))
    return found[:2] if isinstance(found, tuple) else None


def _walk(paths: Iterable[str | Path], report: ScanReport) -> Iterator[tuple[str, bool]]:
    """(absolute path, named) of every file under ``paths``: a directory's top is
    resolved once, the files under it are joined to it (no per-file ``resolve``)."""
    for top in paths:
        top_path = Path(top)
        if not top_path.exists():
            report.missing.append(str(top))
            log.log(logging.DEBUG if report.quiet else logging.WARNING,
                    "%s does not exist", top)
            continue
        if not top_path.is_dir():
            yield str(top_path.resolve()), True
            continue
        for root, dirs, names in os.walk(top_path.resolve(), onerror=_walk_error(report)):
            dirs[:] = [d for d in dirs if d != INCOMING]  # half-received, not yet instances
            for name in sorted(names):
                if not name.startswith(TEMP_PREFIX):
                    yield os.path.join(root, name), False


def _found(path: str, named: bool, report: ScanReport) -> _Found | None:
    """What ``_read`` found in one file, counted in ``report``; None if passed over."""
    found = _read(Path(path))
    if isinstance(found, str):
        report.skip(path, found, named=named)
        return None
    report.indexed += 1
    return found


def scan(paths: Iterable[str | Path], report: ScanReport | None = None
         ) -> Iterator[tuple[str, str, str]]:
    """(class, instance, path) for every DICOM file under ``paths`` (files or directories).

    What is passed over, and why, goes into ``report`` (and the log at INFO).
    """
    report = ScanReport() if report is None else report
    for path, named in _walk(paths, report):
        report.files += 1
        found = _found(path, named, report)
        if found is not None:
            yield found[0], found[1], path


def _walk_error(report: ScanReport) -> Callable[[OSError], None]:
    def error(exc: OSError) -> None:
        report.skip(str(exc.filename), f"unreadable folder ({exc.strerror or exc})",
                    named=False)
    return error


# (path, named, size, mtime in ns) of a file seen by the walk
_Seen = tuple[str, bool, int, int]


def _stat_batch(files: Iterator[tuple[str, bool]], batch: int, report: ScanReport,
                stop: threading.Event) -> list[_Seen]:
    """The next ``batch`` files of the walk with their size and mtime (one ``stat``
    each, nothing read); [] when the walk is over or ``stop`` is set."""
    seen: list[_Seen] = []
    for path, named in files:
        report.files += 1
        try:
            st = os.stat(path)
        except OSError as exc:
            report.skip(path, f"unreadable ({exc.strerror or exc})", named=named)
            continue
        seen.append((path, named, st.st_size, st.st_mtime_ns))
        if len(seen) >= batch or stop.is_set():
            break
    return seen


def _read_batch(seen: list[_Seen], report: ScanReport, stop: threading.Event
                ) -> list[InstanceRecord]:
    rows: list[InstanceRecord] = []
    for path, named, size, mtime_ns in seen:
        if stop.is_set():
            break
        found = _found(path, named, report)
        if found is not None:
            rows.append(InstanceRecord(
                sop_class_uid=found[0], sop_instance_uid=found[1], path=path,
                transfer_syntax=found[2], size=size, mtime_ns=mtime_ns, attrs=found[3]))
    return rows


async def index_paths(index: ArchiveIndex, paths: Iterable[str | Path], now: float,
                      batch: int = 500, report: ScanReport | None = None, *,
                      progress: Callable[[ScanReport], None] | None = None) -> int:
    """Index every DICOM file under ``paths``, with the attributes Query/Retrieve
    asks for; returns how many were indexed (read).

    A file indexed before whose path, size and mtime are unchanged is not read
    again (``report.unchanged``); a changed one is. Files that are not instances
    are read again each time. The walk and the reading run on a worker thread,
    ``batch`` files at a time, so the event loop goes on while a large archive is
    scanned; ``progress(report)`` is called after each batch. Cancelled, the
    thread stops after the file it is reading.
    """
    report = ScanReport() if report is None else report
    stop = threading.Event()
    files = _walk(paths, report)
    total = 0
    try:
        while True:
            seen = await asyncio.to_thread(_stat_batch, files, batch, report, stop)
            if not seen:
                return total
            known = await index.file_stats([s[0] for s in seen])
            changed = [s for s in seen if known.get(s[0]) != (s[2], s[3])]
            report.unchanged += len(seen) - len(changed)
            if changed:
                rows = await asyncio.to_thread(_read_batch, changed, report, stop)
                if rows:
                    total += await index.add_records(rows, now)
            if progress is not None:
                progress(report)
    except BaseException:
        stop.set()
        raise

"""Writing received instances into the archive: whole or not at all, indexed at once.

Three ways in, one way through:

- ``begin(class, instance, syntax)``: an ``Incoming`` file in ``<root>/.incoming/``
  with the preamble and file meta information written; the C-STORE layer appends
  the data set's bytes as fragments arrive (``write``), then ``finish`` moves it
  into place: a rename, no copy, whatever the instance's size.
- ``store_file(path)``: a Part 10 file already on disk (moved if ``move``, else
  copied); with ``transfer_syntax``, a bare data set in that syntax (the meta is
  put in front, which costs a copy).
- ``store_bytes(data, syntax)``: a bare data set in memory.
- ``store_received(path, start, syntax)``: the file the library streamed a C-STORE
  to, with its data set's first bytes (kept in memory by the library): the index
  attributes are read from those bytes (``record_head``) when they hold them, and
  with ``fsync=False`` the rename is done at once when the folder exists (no
  thread step: two stats and a rename, as the library writes the file itself).

Then: the attributes the index needs are read from the file (not the pixel data);
the SOP Class and Instance UIDs must match what the caller expected; the file
goes to ``layout.instance_path`` by ``os.replace`` (atomic: a reader sees the old
file or the new, never part of one); it is indexed before ``finish`` returns, so a
storage commitment request right after the C-STORE response finds it.

Durability (``fsync=True``, the default): the file is fsynced before the rename
and its folder after, so an instance answered as stored survives a power cut.
``fsync=False`` leaves that to the system (as DCMTK's storescp does): faster, and
a crash may lose the last instances answered.

Duplicates (an instance whose SOP Instance UID is indexed with its file present):
``replace`` (default) writes the new file over the old and indexes it again (an
old file elsewhere in the archive folder is removed); ``keep`` writes nothing and
keeps the first. Both answer Success: C-STORE's warnings (0xB000 coercion, 0xB006
elements discarded, 0xB007 mismatch) would each claim something that did not
happen; ``Stored.duplicate`` and ``Stored.written`` say what did, for the log.

Failures: out of space (ENOSPC, EDQUOT) raises ``StoreError(full=True)`` (0xA700),
any other file error ``StoreError`` (0x0110); the temporary file is removed, and a
new file whose indexing failed is removed too. A data set that is not one
(``InvalidInstance``, with the C-STORE status to answer) leaves nothing either.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import Tag
from pydicom.uid import UID

from ..logs import get_logger
from ..part10 import read_meta
from ..presentation import DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN as DEFLATED
from ..store.index import TEMP_PREFIX
from ..store.interface import ArchiveIndex, StoreError
from ..store.records import RECORD_TAGS, InstanceRecord, record_values
from ..store_scp import syntax_flags
from ..uids import IMPLEMENTATION_CLASS_UID
from .layout import INCOMING, SUFFIX, bad_uid
from .record_head import record_from_start

__all__ = ["ArchiveWriter", "Incoming", "Stored", "InvalidInstance", "DuplicatePolicy",
           "TEMP_PREFIX", "CANNOT_UNDERSTAND", "DOES_NOT_MATCH"]

log = get_logger("aiodimse.archive")

DuplicatePolicy = Literal["replace", "keep"]
CANNOT_UNDERSTAND = 0xC000  # C-STORE: Error, cannot understand
DOES_NOT_MATCH = 0xA900  # C-STORE: Error, data set does not match SOP Class
_FULL = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)
_COPY_CHUNK = 1 << 20


class InvalidInstance(Exception):
    """The data set cannot be stored as an instance; ``status`` is the C-STORE answer:
    0xC000 when it does not parse, lacks its SOP UIDs or names another SOP Instance
    than the request; 0xA900 when it names another SOP Class or lacks a Study or
    Series Instance UID (no composite instance does)."""

    def __init__(self, message: str, status: int = CANNOT_UNDERSTAND) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of an instance: where it is, and whether it was held already
    (``duplicate``) and written this time (``written``: False when kept)."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str
    duplicate: bool
    written: bool


def _error(exc: OSError, what: str) -> StoreError:
    return StoreError(f"{what}: {exc.strerror or exc}", full=exc.errno in _FULL)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _meta(sop_class: str, sop_instance: str, syntax: str,
          source_aet: str | None) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = "AIODIMSE"
    if source_aet:
        meta.SourceApplicationEntityTitle = source_aet[:16]
    return meta


def _head(file: BinaryIO, meta: FileMetaDataset) -> None:
    file.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(file, meta, enforce_standard=True)  # type: ignore[arg-type]


class Incoming:
    """A file being received into the archive; ``write`` the data set's bytes,
    then hand it to ``ArchiveWriter.finish`` (or ``discard`` it)."""

    def __init__(self, path: Path, file: BinaryIO, sop_class_uid: str,
                 sop_instance_uid: str) -> None:
        self.path = path
        self.file = file
        self.sop_class_uid = sop_class_uid
        self.sop_instance_uid = sop_instance_uid
        self.size = 0  # data set bytes written

    def write(self, data: bytes | memoryview) -> None:
        """Append data set bytes (blocking). On a file error the file is removed and
        ``StoreError`` raised (``full`` when out of space)."""
        try:
            self.file.write(data)
        except OSError as exc:
            self.discard()
            raise _error(exc, "cannot write the instance") from exc
        self.size += len(data)

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()

    def discard(self) -> None:
        """Remove the file (the association failed, the data set was bad)."""
        with contextlib.suppress(OSError):
            self.close()
        _unlink(self.path)


@dataclass(frozen=True, slots=True)
class _Read:
    sop_class: str
    sop_instance: str
    syntax: str
    attrs: dict[str, str]


_LAST_RECORD_TAG = max(Tag(keyword) for keyword in RECORD_TAGS)


def _past_records(tag: int, _vr: str | None, _length: int) -> bool:
    return bool(tag > _LAST_RECORD_TAG)


def _read_dataset(path: Path) -> tuple[Dataset, dict[int, str]]:
    """The data set's elements up to the last the index needs, and the file meta's
    values: read directly when the transfer syntax allows (the usual case), else
    (deflated, unknown to pydicom, no ``DICM``) by ``dcmread``."""
    with path.open("rb") as fp:
        found = read_meta(fp)
        syntax = found[1].get(0x0010) if found is not None else None
        if found is not None and syntax is not None and syntax != DEFLATED:
            try:
                implicit, little = syntax_flags(syntax)
            except ValueError:
                pass
            else:
                return read_dataset(fp, implicit, little, stop_when=_past_records), found[1]
    ds = dcmread(path, stop_before_pixels=True, specific_tags=RECORD_TAGS)
    meta = ds.file_meta
    return ds, {element: str(meta.get(Tag(0x0002, element), "")) for element in (2, 3, 0x10)}


def _read(path: Path) -> _Read:
    """The UIDs and index attributes of a Part 10 file (its pixel data unread)."""
    try:
        ds, meta = _read_dataset(path)
    except OSError as exc:
        raise _error(exc, "cannot read the instance") from exc
    except Exception as exc:  # pydicom's many ways of saying "not DICOM"
        raise InvalidInstance(f"the data set does not parse: {type(exc).__name__}") from exc
    attrs = record_values(ds)
    sop_class = attrs.get("SOPClassUID") or meta.get(0x0002, "")
    sop_instance = attrs.get("SOPInstanceUID") or meta.get(0x0003, "")
    if not sop_class or not sop_instance:
        raise InvalidInstance("no SOP Class or SOP Instance UID in the data set")
    return _Read(sop_class, sop_instance, meta.get(0x0010, ""), attrs)


def _read_start(start: bytes, syntax: str) -> _Read | None:
    """``_read`` of a file whose data set starts with ``start`` (in memory) and whose
    meta says ``syntax``: None unless those bytes hold every attribute the index
    needs, readable without pydicom (record_head.py)."""
    if not start or syntax == DEFLATED:
        return None
    try:
        implicit, little = syntax_flags(syntax)
    except ValueError:
        return None
    attrs = record_from_start(start, implicit) if little else None
    if attrs is None:
        return None
    sop_class, sop_instance = attrs.get("SOPClassUID"), attrs.get("SOPInstanceUID")
    if not sop_class or not sop_instance:
        return None
    return _Read(sop_class, sop_instance, syntax, attrs)


def _rename_here(source: Path, final: Path) -> tuple[bool, int, int] | None:
    """Move ``source`` to ``final`` on the calling thread (the event loop's: two
    stats and a rename, no sync, for ``fsync=False``); (whether a file was there,
    size, mtime ns), or None when the rename failed (a folder to make, another file
    system, a full disk...): the caller then does it all on a thread, as usual."""
    try:
        existed = os.path.exists(final)
        os.replace(source, final)
    except OSError:
        return None
    try:
        st = os.stat(final)
    except OSError as exc:
        raise _error(exc, "cannot store the instance") from exc
    return existed, st.st_size, st.st_mtime_ns


class ArchiveWriter:
    """Stores instances under ``root`` and indexes them in ``index`` (see module)."""

    def __init__(self, root: str | Path, index: ArchiveIndex, *,
                 duplicates: DuplicatePolicy = "replace", fsync: bool = True) -> None:
        if duplicates not in ("replace", "keep"):
            raise ValueError(f"unknown duplicate policy {duplicates!r}")
        self.root = Path(root).resolve()
        self.index = index
        self.duplicates = duplicates
        self.fsync = fsync

    # -- ways in -----------------------------------------------------------------------

    def begin(self, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str, *,
              source_aet: str | None = None) -> Incoming:
        """A new ``Incoming`` file with its preamble and meta written (blocking: a
        file is created). Raises ``StoreError`` (full or not)."""
        folder = self.root / INCOMING
        path = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            file = path.open("xb")
        except OSError as exc:
            raise _error(exc, "cannot create the instance's file") from exc
        incoming = Incoming(path, file, sop_class_uid, sop_instance_uid)
        try:
            _head(file, _meta(sop_class_uid, sop_instance_uid, transfer_syntax, source_aet))
        except OSError as exc:
            incoming.discard()
            raise _error(exc, "cannot write the instance") from exc
        return incoming

    async def finish(self, incoming: Incoming) -> Stored:
        """Put a received file in its place and index it (the file is gone from
        ``.incoming`` whatever happens)."""
        try:
            await asyncio.to_thread(self._close, incoming)
        except BaseException:
            incoming.discard()
            raise
        return await self._commit(incoming.path, True, incoming.sop_class_uid,
                                  incoming.sop_instance_uid)

    async def store_bytes(self, data: bytes | memoryview, transfer_syntax: str, *,
                          sop_class_uid: str, sop_instance_uid: str,
                          source_aet: str | None = None) -> Stored:
        """Store a bare data set encoded in ``transfer_syntax``."""
        def write() -> Incoming:
            incoming = self.begin(sop_class_uid, sop_instance_uid, transfer_syntax,
                                  source_aet=source_aet)
            incoming.write(data)
            return incoming
        return await self.finish(await asyncio.to_thread(write))

    async def store_file(self, path: str | Path, *, move: bool = True,
                         transfer_syntax: str | None = None,
                         sop_class_uid: str | None = None,
                         sop_instance_uid: str | None = None,
                         source_aet: str | None = None) -> Stored:
        """Store a Part 10 file (moved: renamed when on the archive's file system;
        else copied), or with ``transfer_syntax`` a file holding a bare data set
        (copied behind a new meta; ``sop_class_uid`` and ``sop_instance_uid`` then
        required). The UIDs, when given, must be the data set's."""
        path = Path(path)
        if transfer_syntax is None:
            return await self._commit(path, False, sop_class_uid, sop_instance_uid,
                                      move=move)
        if sop_class_uid is None or sop_instance_uid is None:
            raise ValueError("a bare data set needs its SOP Class and Instance UIDs")

        def copy() -> Incoming:
            incoming = self.begin(sop_class_uid, sop_instance_uid, transfer_syntax,
                                  source_aet=source_aet)
            try:
                with path.open("rb") as src:
                    while chunk := src.read(_COPY_CHUNK):
                        incoming.write(chunk)
            except OSError as exc:
                incoming.discard()
                raise _error(exc, f"cannot read {path}") from exc
            return incoming
        stored = await self.finish(await asyncio.to_thread(copy))
        if move:
            await asyncio.to_thread(_unlink, path)
        return stored

    async def store_received(self, path: str | Path, start: bytes, transfer_syntax: str, *,
                             sop_class_uid: str, sop_instance_uid: str) -> Stored:
        """``store_file(path, move=True, ...)`` of the file the library streamed a
        C-STORE to (its meta the library's: the command's UIDs, the context's
        ``transfer_syntax``), whose data set starts with ``start`` (its first bytes,
        kept in memory): the index attributes are read from those bytes when they
        hold them all, else from the file. With ``fsync=False`` the rename is done
        at once when the folder exists, not on a thread."""
        read = _read_start(start, transfer_syntax)
        return await self._commit(Path(path), False, sop_class_uid, sop_instance_uid,
                                  read=read)

    # -- one way through ---------------------------------------------------------------

    def _close(self, incoming: Incoming) -> None:
        try:
            if self.fsync:
                incoming.file.flush()
                os.fsync(incoming.file.fileno())
            incoming.close()
        except OSError as exc:
            raise _error(exc, "cannot write the instance") from exc

    async def _commit(self, source: Path, owned: bool, sop_class: str | None,
                      sop_instance: str | None, *, move: bool = True,
                      read: _Read | None = None) -> Stored:
        """Check, place and index ``source``; ``owned``: a temporary file of ours,
        removed on any failure (else the caller's file is left as it was); ``read``:
        what ``_read`` would find in it, when known already."""
        try:
            if sop_instance is not None and self.duplicates == "replace":
                return await self._replace(source, owned, sop_class, sop_instance, move,
                                           read)
            if read is None:
                read = await asyncio.to_thread(_read, source)
            final = self._check(read, sop_class, sop_instance)
            held = await self.index.archived_path(read.sop_instance)
            duplicate = held is not None and await asyncio.to_thread(os.path.exists, held)
            if duplicate and self.duplicates == "keep":
                if owned:
                    await asyncio.to_thread(_unlink, source)
                log.info("instance %s is held already (%s): kept the first",
                         read.sop_instance, held)
                return Stored(str(held), read.sop_class, read.sop_instance, True, False)
            size, mtime_ns = await asyncio.to_thread(
                self._place, source, final, owned or move, self.fsync and not owned)
        except BaseException:
            if owned:
                await asyncio.to_thread(_unlink, source)
            raise
        return await self._index(read, final, size, mtime_ns, held, duplicate)

    async def _replace(self, source: Path, owned: bool, sop_class: str | None,  # noqa: PLR0917
                       sop_instance: str, move: bool, read: _Read | None) -> Stored:
        """``_commit`` with nothing to decide before placing (the usual C-STORE): the
        file read, checked and placed in one thread step (``read`` known: checked
        here, and with ``fsync=False`` renamed here too when its folder exists),
        then indexed by one call that says where the instance was (each a wait the
        response has)."""
        if read is None:
            found, final, existed, size, mtime_ns = await asyncio.to_thread(
                self._read_and_place, source, sop_class, sop_instance, owned or move,
                self.fsync and not owned)
        else:
            found, final = read, self._check(read, sop_class, sop_instance)
            placed = _rename_here(source, final) if move and not self.fsync else None
            if placed is None:
                placed = await asyncio.to_thread(self._exists_and_place, source, final,
                                                 owned or move, self.fsync and not owned)
            existed, size, mtime_ns = placed
        return await self._index_replacing(found, final, existed, size, mtime_ns)

    async def _index_replacing(self, read: _Read, final: Path, existed: bool, size: int,
                               mtime_ns: int) -> Stored:
        """``_replace``'s indexing of the placed file (a new one removed on failure)."""
        record = self._record(read, final, size, mtime_ns)
        try:
            held = await self.index.index_instance(record, time.time())
        except BaseException:
            if not existed:  # a new file: not indexed is not kept
                await asyncio.to_thread(_unlink, final)
            raise
        if held is None or held == str(final):
            return Stored(str(final), read.sop_class, read.sop_instance,
                          held is not None and existed, True)
        duplicate = await asyncio.to_thread(self._remove_replaced, Path(held))
        return Stored(str(final), read.sop_class, read.sop_instance, duplicate, True)

    def _read_and_place(self, source: Path, sop_class: str | None, sop_instance: str,
                        move: bool, sync_source: bool
                        ) -> tuple[_Read, Path, bool, int, int]:
        """(what was read, where it went, whether a file was there, size, mtime ns)."""
        read = _read(source)
        final = self._check(read, sop_class, sop_instance)
        return (read, final, *self._exists_and_place(source, final, move, sync_source))

    def _exists_and_place(self, source: Path, final: Path, move: bool, sync_source: bool
                          ) -> tuple[bool, int, int]:
        """(whether a file was at ``final``, size, mtime ns): ``_place`` after a look."""
        existed = os.path.exists(final)
        return (existed, *self._place(source, final, move, sync_source))

    async def _index(self, read: _Read, final: Path, size: int, mtime_ns: int,  # noqa: PLR0917
                     held: str | None, duplicate: bool) -> Stored:
        """Index a placed file; on failure a new file is removed (module doc)."""
        record = self._record(read, final, size, mtime_ns)
        try:
            await self.index.add_records([record], time.time())
        except BaseException:
            if held != str(final):  # a new file: not stored is not kept
                await asyncio.to_thread(_unlink, final)
            raise
        if duplicate and held is not None and held != str(final):
            await asyncio.to_thread(self._remove_replaced, Path(held))
        return Stored(str(final), read.sop_class, read.sop_instance, duplicate, True)

    @staticmethod
    def _record(read: _Read, final: Path, size: int, mtime_ns: int) -> InstanceRecord:
        return InstanceRecord(
            sop_class_uid=read.sop_class, sop_instance_uid=read.sop_instance,
            path=str(final), transfer_syntax=read.syntax, size=size, mtime_ns=mtime_ns,
            attrs=read.attrs)

    def _check(self, read: _Read, sop_class: str | None, sop_instance: str | None) -> Path:
        if sop_instance is not None and read.sop_instance != sop_instance:
            raise InvalidInstance(f"the data set is SOP Instance {read.sop_instance[:64]}, "
                                  f"not {sop_instance[:64]}")
        if sop_class is not None and read.sop_class != sop_class:
            raise InvalidInstance(f"the data set is of SOP Class {read.sop_class[:64]}, "
                                  f"not {sop_class[:64]}", DOES_NOT_MATCH)
        study = read.attrs.get("StudyInstanceUID", "")
        series = read.attrs.get("SeriesInstanceUID", "")
        uids = {"StudyInstanceUID": study, "SeriesInstanceUID": series,
                "SOPInstanceUID": read.sop_instance, "SOPClassUID": read.sop_class}
        bad = bad_uid(uids)
        if bad is not None:
            status = CANNOT_UNDERSTAND if bad.startswith("SOP") else DOES_NOT_MATCH
            raise InvalidInstance(f"{bad} is missing or not a UID", status)
        # layout.instance_path, its UIDs checked just above
        return Path(f"{self.root}{os.sep}{study}{os.sep}{series}{os.sep}"
                    f"{read.sop_instance}{SUFFIX}")

    def _place(self, source: Path, final: Path, move: bool, sync_source: bool
               ) -> tuple[int, int]:
        """Move (or copy) ``source`` to ``final`` atomically; (size, mtime ns).
        ``sync_source``: a caller's file, not known to be on disk yet."""
        folder = final.parent
        try:
            if move and sync_source:
                with source.open("rb") as f:
                    os.fsync(f.fileno())
            made: list[Path] = []
            try:
                self._put(source, final, move)
            except FileNotFoundError:  # the folders first (the series' first instance)
                if not source.exists():
                    raise
                made = [p for p in (folder.parent, folder) if not p.exists()]
                folder.mkdir(parents=True, exist_ok=True)
                self._put(source, final, move)
            if self.fsync:  # the file's entry, and those of the folders made for it
                for path in {folder, *(p.parent for p in made)}:
                    _fsync_dir(path)
            st = final.stat()
        except OSError as exc:
            raise _error(exc, "cannot store the instance") from exc
        return st.st_size, st.st_mtime_ns

    def _put(self, source: Path, final: Path, move: bool) -> None:
        """Rename (or copy) ``source`` to ``final``, in a folder that must exist."""
        if move:
            try:
                os.replace(source, final)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
            self._copy(source, final)
            _unlink(source)
        else:
            self._copy(source, final)

    def _copy(self, source: Path, final: Path) -> None:
        """Copy into a temporary file beside ``final``, then rename it there."""
        tmp = final.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            with source.open("rb") as src, tmp.open("xb") as dst:
                shutil.copyfileobj(src, dst, _COPY_CHUNK)
                if self.fsync:
                    dst.flush()
                    os.fsync(dst.fileno())
            os.replace(tmp, final)
        except BaseException:
            _unlink(tmp)
            raise

    def _remove_replaced(self, old: Path) -> bool:
        """The file a replaced duplicate had, if it is one of ours; whether it was
        there (the instance was held)."""
        if not old.exists():
            return False
        if old.is_relative_to(self.root) and old.suffix == ".dcm":
            _unlink(old)
        return True

"""C-STORE as SCP: EVT_C_STORE, and received instances kept in memory or streamed to files.

A C-STORE request is served here, not on the association's usual path (its
``RequestKind.serve``), because it needs more than a handler call:

* before any handler runs, the instance is screened (PS3.4 B.2.3, as DCMTK's
  storescp does): a data set that is empty or whose first elements do not parse,
  or that lacks SOP Class / SOP Instance UID, is answered 0xC000 (Error: cannot
  understand); one whose SOP Class or SOP Instance UID differs from the command's
  0xA900 (Error: data set does not match SOP class); a streamed one that could not
  be written (disk full, over ``AE.maximum_stored_size``) 0xA700 (Refused: out of
  resources). Requests without a data set or with an instance UID that is no UID
  never get here (the command decoder refuses them: 0x0110, 0x0117);
* with ``AE.store_to_file`` the data set is written, as it arrives, to a temporary
  Part 10 file (file meta first) in ``AE.store_directory`` (the DIMSE reassembler
  hands its fragments to a :class:`FileSink` instead of holding them): memory per
  association stays bounded whatever the instance's size. The handler gets it as
  ``event.dataset_path`` and may ``os.replace`` it into an archive; whatever is
  left is removed once the handler has returned, and a partial file when the
  association ends before the instance is whole. Deflated contexts are not
  streamed (their data set is inflated in memory first);
* no handler bound, or a handler that raises: 0xC211, pynetdicom's status for a
  handler failure (pynetdicom's default C-STORE handler raises). The association
  is kept in every case.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import queue
import secrets
import struct
import tempfile
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID

from . import evt
from .association_log import log, log_handler_failure
from .datasets import DatasetDecodeError, Inflated, InflateLimitError, decode_dataset
from .deflated import inflate_in_steps
from .dimse.assemble import ReceivedMessage, sink_of
from .dimse.messages import CStoreRQ, DIMSEMessage
from .events import Event
from .handlers import call_handler
from .logs import peer_of
from .part10 import first_uids
from .presentation import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from .requests import RequestKind, set_kind

if TYPE_CHECKING:
    from .dimse.assemble import DatasetSink, SinkFactory
    from .presentation import PresentationContext

__all__ = [
    "CANNOT_UNDERSTAND",
    "DOES_NOT_MATCH",
    "HANDLER_FAILED",
    "OUT_OF_RESOURCES",
    "FileSink",
    "Spool",
    "file_head",
    "file_meta_for",
    "read_identity",
    "store_sinks",
    "syntax_flags",
]

CANNOT_UNDERSTAND = 0xC000
DOES_NOT_MATCH = 0xA900
OUT_OF_RESOURCES = 0xA700
HANDLER_FAILED = 0xC211  # pynetdicom's "unhandled exception raised by the handler"

DEFAULT_MAXIMUM_STORED_SIZE = 64 << 30
"""``AE.maximum_stored_size``'s default: the largest instance streamed to a file."""

_WRITE_BUFFER = 256 * 1024  # a streamed file's fragments held for one write: the bytes
_WRITE_PARTS = 256  # ... and at most this many of them (one writev; IOV_MAX is 1024)
_FIRST_BYTES = 4096  # of a streamed data set, kept to screen it without reading the file
_HEAD_BYTES = 1 << 20  # what screening may read of an in-memory data set


def syntax_flags(transfer_syntax: str) -> tuple[bool, bool]:
    """(implicit VR, little endian) of a transfer syntax; encapsulated (compressed)
    ones are Explicit VR Little Endian. Raises ValueError for one pydicom does not know."""
    if transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        return True, True
    if transfer_syntax == EXPLICIT_VR_BIG_ENDIAN:
        return False, False
    if transfer_syntax in (EXPLICIT_VR_LITTLE_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN):
        return False, True
    uid = UID(transfer_syntax)
    if uid.is_transfer_syntax:
        return bool(uid.is_implicit_VR), bool(uid.is_little_endian)
    raise ValueError(f"unknown transfer syntax {transfer_syntax}")


def _decode(data: bytes | memoryview, transfer_syntax: str) -> Dataset:
    """``event.dataset`` of an in-memory instance: as ``decode_dataset``, and an
    encapsulated transfer syntax read as the Explicit VR Little Endian it is."""
    if transfer_syntax in (IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN,
                           EXPLICIT_VR_BIG_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN):
        return decode_dataset(data, transfer_syntax)
    implicit, little = syntax_flags(transfer_syntax)
    if implicit or not little:  # (no such encapsulated syntax)
        raise ValueError(f"cannot decode a data set in {transfer_syntax}")
    return decode_dataset(data, EXPLICIT_VR_LITTLE_ENDIAN)


def file_meta_for(request: CStoreRQ, context: PresentationContext, ae: Any) -> FileMetaDataset:
    """File Meta Information for a received instance (as pynetdicom's ``event.file_meta``)."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(request.AffectedSOPClassUID)
    meta.MediaStorageSOPInstanceUID = UID(request.AffectedSOPInstanceUID)
    meta.TransferSyntaxUID = UID(context.transfer_syntax)
    meta.ImplementationClassUID = UID(ae.implementation_class_uid)
    if ae.implementation_version_name:
        meta.ImplementationVersionName = ae.implementation_version_name
    return meta


_OB_HEADER = struct.Struct("<HH2sHL")  # (0002,eeee) OB/UL: reserved 2 bytes, length 4
_SHORT_HEADER = struct.Struct("<HH2sH")  # (0002,eeee) UI/SH/UL: length 2


def _meta_text(element: int, vr: bytes, text: str) -> bytes:
    """One group 0002 element (Explicit VR LE), padded to even length as PS3.5 says
    (a UID with NUL, other text with a space); text in pydicom's default encoding."""
    value = text.encode("latin-1", "replace")
    if len(value) & 1:
        value += b"\0" if vr == b"UI" else b" "
    return _SHORT_HEADER.pack(2, element, vr, len(value)) + value


def file_head(request: CStoreRQ, context: PresentationContext, ae: Any) -> bytes:
    """Preamble, ``DICM`` and the group 0002 of :func:`file_meta_for`'s meta, as
    pydicom's ``write_file_meta_info`` writes it, encoded here directly: once per
    stored instance, where building and writing the pydicom Dataset cost more than
    the rest of the request's own work."""
    version = ae.implementation_version_name
    body = b"".join((
        _OB_HEADER.pack(2, 0x0001, b"OB", 0, 2), b"\x00\x01",
        _meta_text(0x0002, b"UI", request.AffectedSOPClassUID),
        _meta_text(0x0003, b"UI", request.AffectedSOPInstanceUID),
        _meta_text(0x0010, b"UI", context.transfer_syntax),
        _meta_text(0x0012, b"UI", ae.implementation_class_uid),
        _meta_text(0x0013, b"SH", version) if version else b"",
    ))
    return b"".join((b"\0" * 128, b"DICM", _SHORT_HEADER.pack(2, 0x0000, b"UL", 4),
                     len(body).to_bytes(4, "little"), body))


class FileSink:
    """A C-STORE data set written to a temporary Part 10 file as its fragments come.

    The reassembler's ``DatasetSink``. It never raises: a failure to create or write
    the file (or an instance past ``limit`` bytes) is kept in ``error``, the file is
    removed and the rest of the data set is counted and dropped; the request is then
    answered 0xA700.

    The fragments (views into received bytes, never changed) are held, not copied
    into a file buffer, and written together by one ``os.writev`` once they reach
    256 kB: a 0.5 MB instance is two writes and no copy in Python.
    """

    __slots__ = ("done", "error", "fd", "first", "head", "held", "held_size", "limit",
                 "path", "size")

    def __init__(self, directory: str | None, head: bytes, limit: int,
                 spool: Spool | None = None) -> None:
        """``head``: what the file starts with (:func:`file_head`); ``spool``: where
        the file comes from (made ahead of need), else one is made now in ``directory``."""
        self.limit = limit
        self.size = 0  # data set bytes received
        self.first = b""  # the data set's first bytes (up to 4 kB): screened from memory
        self.head = 0  # bytes of the file before the data set
        self.error: str | None = None
        self.done = False
        self.fd: int | None = None
        self.path: Path | None = None
        self.held: list[bytes | bytearray | memoryview] = [head]  # not yet written
        self.held_size = len(head)
        try:
            self.fd, name = spool.take() if spool is not None else spool_file(directory)
            self.path = Path(name)
            self.head = len(head)
        except OSError as exc:  # no such directory, disk full
            self._fail(f"cannot write the instance: {exc}")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.size:
            self.first = bytes(data[:_FIRST_BYTES])
        size = data.nbytes if type(data) is memoryview else len(data)
        self.size += size
        if self.fd is None:
            return
        if self.size > self.limit:
            self._fail(f"instance over maximum_stored_size ({self.limit} bytes)")
            return
        held = self.held
        held.append(data)
        self.held_size += size
        if self.held_size >= _WRITE_BUFFER or len(held) >= _WRITE_PARTS:
            self._write_held(self.fd)

    def _write_held(self, fd: int) -> None:
        held = self.held
        self.held, self.held_size = [], 0
        try:
            while held:
                done = os.writev(fd, held)
                while held and done >= len(held[0]):  # (a regular file: all, but for errors)
                    done -= len(held.pop(0))
                if done:
                    held[0] = memoryview(held[0])[done:]
        except OSError as exc:
            self._fail(f"cannot write the instance: {exc}")

    def finish(self) -> None:
        self.done = True
        if self.fd is not None:
            self._write_held(self.fd)
        fd = self.fd
        if fd is not None:
            self.fd = None
            try:
                os.close(fd)
            except OSError as exc:
                self._fail(f"cannot write the instance: {exc}")

    def discard(self) -> None:
        """The message never completed (or is done with): the file goes."""
        self._fail(self.error or "discarded")

    def remove(self) -> None:
        """Remove the file if it is still there (the handler did not move it)."""
        path = self.path
        if path is not None:
            self.path = None
            with contextlib.suppress(OSError):
                path.unlink()

    def _fail(self, why: str) -> None:
        self.error = why
        self.held, self.held_size = [], 0
        fd = self.fd
        if fd is not None:
            self.fd = None
            with contextlib.suppress(OSError):
                os.close(fd)
        self.remove()


_SPOOL_FLAGS = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


class _Process:
    """Per-process state of the spool: the names' random token and counter, and the
    thread that makes spare files (neither survives a fork: a child makes its own;
    no getpid() per file, a system call each)."""

    token = secrets.token_hex(6)
    names = itertools.count()
    orders: queue.SimpleQueue[_Spare] | None = None  # the maker thread's
    maker: threading.Thread | None = None
    lock = threading.Lock()

    @classmethod
    def renew(cls) -> None:
        cls.token, cls.orders, cls.maker = secrets.token_hex(6), None, None
        cls.lock = threading.Lock()

    @classmethod
    def order(cls, spare: _Spare) -> None:
        """Have the maker thread make ``spare``."""
        orders = cls.orders
        if orders is None:
            with cls.lock:
                if cls.orders is None:
                    cls.orders = queue.SimpleQueue()
                    cls.maker = threading.Thread(target=_make_spares, args=(cls.orders,),
                                                 name="aiodimse-spool", daemon=True)
                    cls.maker.start()
                orders = cls.orders
        orders.put(spare)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Process.renew)


def spool_file(directory: str | None) -> tuple[int, str]:
    """A new, empty temporary file (mode 0600) in ``directory`` (None: the system's
    temporary folder), as ``tempfile.mkstemp`` makes one: (descriptor, path). Named
    from a per-process random token and a counter, not mkstemp's random draw per
    name (its Python work cost more than a tenth of the file's creation)."""
    if directory is None:
        directory = tempfile.gettempdir()
    for _ in range(100):
        name = os.path.join(directory, f"aiodimse-{_Process.token}-{next(_Process.names)}"
                                       ".dcm.part")
        try:
            return os.open(name, _SPOOL_FLAGS, 0o600), name
        except FileExistsError:  # another process drew the same token: draw again
            _Process.token = secrets.token_hex(6)
    raise FileExistsError(f"no unused temporary file name in {directory}")


class _Spare:
    """A file made ahead by the maker thread: ``ready`` is held until it is made
    (``made``; None when that failed). One ``dropped`` before its making started is
    never made; ``making`` and ``dropped`` change under ``guard``."""

    __slots__ = ("directory", "dropped", "guard", "made", "making", "ready")

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self.made: tuple[int, str] | None = None
        self.dropped = self.making = False
        self.guard = threading.Lock()
        self.ready = threading.Lock()
        self.ready.acquire()


def _make_spares(orders: queue.SimpleQueue[_Spare]) -> None:
    """The maker thread: spares made in the order asked, but dropped ones."""
    while True:
        spare = orders.get()
        with spare.guard:
            if spare.dropped:
                continue
            spare.making = True
        with contextlib.suppress(OSError):  # (the taker makes its own, and sees the error)
            spare.made = spool_file(spare.directory)
        spare.ready.release()


class Spool:
    """Where one association's streamed C-STOREs get their files.

    From its second C-STORE on, an association has the file for the next one made
    ahead by a thread (one per process, a plain queue of orders) while the loop
    receives: the creation (a directory entry and an inode, 0.1-1.5 ms of kernel
    time on ext4 as write-back grows; the loop waited for it as each command came)
    runs beside the receiving, on the other core. A single C-STORE makes no spare.
    A spare not made yet when needed is not waited for (the thread may be busy with
    other associations' orders): a file is made at once, and the spare kept for the
    next one. At most one spare per association; ``close`` (the association ended,
    however) removes it before it returns, or has it never made.
    """

    __slots__ = ("directory", "spare", "taken")

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self.spare: _Spare | None = None
        self.taken = 0  # files handed out

    def take(self) -> tuple[int, str]:
        """A new file: the spare if made, else one made now; then the next spare is
        ordered. Raises OSError as ``spool_file``."""
        self.taken += 1
        spare = self.spare
        if spare is not None:
            if not spare.ready.acquire(False):  # still being made: for the next one
                return spool_file(self.directory)
            self.spare = None
            made = spare.made
        else:
            made = None
        if self.taken > 1:
            self.spare = spare = _Spare(self.directory)
            _Process.order(spare)
        return made if made is not None else spool_file(self.directory)

    def close(self) -> None:
        """The association ended: no more files; the spare is removed (once made, if
        its making is under way: one file creation waited for, at most 30 s), or
        never made."""
        spare = self.spare
        if spare is None:
            return
        self.spare = None
        with spare.guard:
            spare.dropped = True
            started = spare.making
        if not started or not spare.ready.acquire(timeout=30):
            return
        made = spare.made
        if made is not None:
            spare.made = None
            with contextlib.suppress(OSError):
                os.close(made[0])
            with contextlib.suppress(OSError):
                os.unlink(made[1])


class StoreSinks:
    """The reassembler's sink factory for an association with ``AE.store_to_file``:
    a :class:`FileSink` for each C-STORE's data set, but on deflated contexts; its
    files from a :class:`Spool` (``close`` when the association ends)."""

    __slots__ = ("ae", "contexts", "spool")

    def __init__(self, assoc: Any) -> None:
        self.ae = assoc.ae
        self.contexts: dict[int, PresentationContext] = assoc._contexts
        self.spool = Spool(getattr(self.ae, "store_directory", None))

    def __call__(self, context_id: int, message: DIMSEMessage) -> DatasetSink | None:
        if type(message) is not CStoreRQ:
            return None
        context = self.contexts[context_id]
        if context.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
            return None
        ae = self.ae
        limit = getattr(ae, "maximum_stored_size", DEFAULT_MAXIMUM_STORED_SIZE)
        return FileSink(None, file_head(message, context, ae), limit, self.spool)

    def close(self) -> None:
        self.spool.close()


def store_sinks(assoc: Any) -> SinkFactory:
    """The sink factory of an association with ``AE.store_to_file`` (:class:`StoreSinks`)."""
    return StoreSinks(assoc)


# -- screening ----------------------------------------------------------------------

def _past_instance_uid(tag: int, _vr: str | None, _length: int) -> bool:
    return tag > 0x00080018


def read_identity(source: BinaryIO, transfer_syntax: str) -> tuple[str | None, str | None]:
    """(SOP Class UID, SOP Instance UID) read from the start of a data set (not
    deflated), each None when missing. Raises ValueError (or pydicom's errors) for
    bad bytes, and ValueError for a transfer syntax pydicom does not know."""
    implicit, little = syntax_flags(transfer_syntax)
    start = source.tell()
    found = first_uids(source, implicit, little)
    if found is None:  # a sequence of undefined length first: pydicom walks it
        source.seek(start)
        ds = read_dataset(source, implicit, little, stop_when=_past_instance_uid)
        found = _raw_value(ds.get_item(0x00080016)), _raw_value(ds.get_item(0x00080018))
    return _uid_text(found[0]), _uid_text(found[1])


def _raw_value(element: Any) -> bytes | None:
    value = None if element is None else element.value
    return value if type(value) is bytes else None if value is None else str(value).encode()


def _uid_text(value: bytes | None) -> str | None:
    return value.decode("latin-1").rstrip("\0 ") or None if value else None


def _identity_in(first: bytes, transfer_syntax: str) -> tuple[str | None, str | None] | None:
    """Both SOP UIDs when the first bytes of a streamed data set hold them (the usual
    case: no need to open the file again); else None (read the file: the bytes may
    just be cut short)."""
    try:
        sop_class, sop_instance = read_identity(io.BytesIO(first), transfer_syntax)
    except Exception:  # cut short or bad: the file's reading judges
        return None
    return None if sop_class is None or sop_instance is None else (sop_class, sop_instance)


def _screen(received: ReceivedMessage, context: PresentationContext,
            sink: FileSink | None) -> tuple[int, str] | None:
    """(status, why) when the instance must be refused before any handler; else None."""
    rq: Any = received.message
    ts = context.transfer_syntax
    if sink is not None:
        if sink.error is not None or sink.path is None:
            return OUT_OF_RESOURCES, sink.error or "not written"
        if not sink.size:
            return CANNOT_UNDERSTAND, "empty data set"
        found: tuple[str | None, str | None] | None = _identity_in(sink.first, ts)
        if found is None:  # not both in the first bytes: the file has the rest
            try:
                with open(sink.path, "rb") as fp:
                    fp.seek(sink.head)
                    found = read_identity(fp, ts)
            except OSError as exc:
                return OUT_OF_RESOURCES, f"cannot read the instance back: {exc}"
            except Exception as exc:  # pydicom raises many types for bad bytes
                return CANNOT_UNDERSTAND, f"data set does not parse: {exc}"
    else:
        data = received.dataset
        if not data:
            return CANNOT_UNDERSTAND, "empty data set"
        if type(data) is Inflated:
            ts = EXPLICIT_VR_LITTLE_ENDIAN
        head = data if type(data) is bytes else bytes(data[:_HEAD_BYTES])
        try:
            found = read_identity(io.BytesIO(head), ts)
        except Exception as exc:  # pydicom raises many types for bad bytes
            return CANNOT_UNDERSTAND, f"data set does not parse: {exc}"
    sop_class, sop_instance = found
    if sop_class is None or sop_instance is None:
        return CANNOT_UNDERSTAND, "no SOP Class UID or SOP Instance UID in the data set"
    if sop_class != rq.AffectedSOPClassUID:
        return DOES_NOT_MATCH, f"SOP Class UID {sop_class} is not the command's"
    if sop_instance != rq.AffectedSOPInstanceUID:
        return DOES_NOT_MATCH, f"SOP Instance UID {sop_instance} is not the command's"
    return None


# -- serving ------------------------------------------------------------------------

def serve_c_store(assoc: Any, received: ReceivedMessage, kind: RequestKind, debug: bool
                  ) -> None:
    """Serve one C-STORE-RQ (module doc): screen it, then its handler in a Task."""
    if assoc.observer is not None:
        assoc.observer.request_started(received.message, received.context_id)
    context: PresentationContext = assoc._contexts[received.context_id]
    sink = sink_of(received)
    assert sink is None or isinstance(sink, FileSink)
    if (context.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN and sink is None
            and received.dataset and type(received.dataset) is not Inflated):
        assoc.track(assoc.loop.create_task(_inflate_then_serve(assoc, received, kind, debug)))
        return
    refused = _screen(received, context, sink)
    if refused is not None:
        status, why = refused
        if sink is not None:
            sink.remove()
        log.warning("C-STORE from %s refused with 0x%04X: %s", peer_of(assoc), status, why)
        answer = Dataset()
        answer.Status = status
        answer.ErrorComment = why[:64]
        assoc.answer(received, kind, answer, debug)
        return
    handlers = assoc.handlers
    handler = handlers.lookup(kind.event, context.abstract_syntax)
    if handler is None:
        if sink is not None:
            sink.remove()
        log.warning("no EVT_C_STORE handler bound: answering 0x%04X", kind.default_result)
        assoc.answer(received, kind, kind.default_result, debug)
        return
    rq: Any = received.message
    event = Event.for_request(assoc, kind.event, context, rq,
                              None if sink is not None else received.dataset, _decode)
    event.extra["file_meta"] = partial(file_meta_for, rq, context, assoc.ae)  # (on first use)
    if sink is not None:
        event.extra["dataset_path"] = sink.path
        # its first bytes, kept for screening: the archive reads its index keys there
        event.extra["dataset_start"] = sink.first
    # One Task (the handler's own coroutine inside it), not started at once: a
    # first step run inside this callback (aio/eager.py) hands the usual handler's
    # work to a thread while the loop still holds the GIL for the rest of the
    # callback, which cost more CPU per instance than the Task it saves
    # (cstore_many.py, plain and ``serve`` handlers alike).
    handled = _Handled(assoc, received, kind, debug, sink)
    handled.task = assoc.loop.create_task(handled.run(handler, event))
    assoc.track(handled.task)


async def _inflate_then_serve(assoc: Any, received: ReceivedMessage, kind: RequestKind,
                              debug: bool) -> None:
    """A deflated instance: inflated in steps (deflated.py) under the AE's limits, then
    served; past a limit or broken: 0xA700 / 0xC000, no handler."""
    ae = assoc.ae
    try:
        data = await inflate_in_steps(received.dataset or b"",
                                      max_length=ae.maximum_dataset_size,
                                      max_ratio=ae.maximum_inflate_ratio)
    except DatasetDecodeError as exc:
        status = OUT_OF_RESOURCES if isinstance(exc, InflateLimitError) else CANNOT_UNDERSTAND
        log.warning("C-STORE from %s refused with 0x%04X: %s", peer_of(assoc), status, exc)
        answer = Dataset()
        answer.Status = status
        answer.ErrorComment = str(exc)[:64]
        assoc.answer(received, kind, answer, debug)
        return
    except BaseException:
        assoc._served().dropped(assoc, received)
        raise
    serve_c_store(assoc, ReceivedMessage(received.context_id, received.message, data,
                                         received.error, received.shape), kind, debug)


class _Handled:
    """A C-STORE handler running in its Task, under the AE's handler time limit (a
    timer, not ``asyncio.wait_for``'s second Task): past it the handler is
    cancelled and, once it has ended, 0xC211 answered; the streamed file is
    removed when the handler has ended."""

    __slots__ = ("assoc", "debug", "expired", "kind", "received", "sink", "task")

    def __init__(self, assoc: Any, received: ReceivedMessage, kind: RequestKind,
                 debug: bool, sink: FileSink | None) -> None:
        self.assoc, self.received, self.kind, self.debug = assoc, received, kind, debug
        self.sink = sink
        self.expired = False
        self.task: asyncio.Task[None] | None = None

    def _time_up(self) -> None:
        if self.task is not None and not self.task.done():
            self.expired = True
            self.task.cancel()

    async def run(self, handler: Any, event: Event) -> None:
        assoc, kind = self.assoc, self.kind
        limit = assoc.ae.handler_timeout
        timer = (assoc.loop.call_later(limit, self._time_up)
                 if limit is not None and limit > 0 else None)
        try:
            try:
                result = await call_handler(handler, event)
            except asyncio.CancelledError:
                if not self.expired:
                    raise
                log.warning("EVT_C_STORE handler from %s still running after %ss: "
                            "answering 0x%04X", peer_of(assoc), limit, kind.failure_result)
                result = kind.failure_result
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                log_handler_failure(kind.event.name, exc, assoc,
                                    f": answering 0x{kind.failure_result:04X}")
                result = kind.failure_result
        except BaseException:  # cancelled: no answer
            assoc._served().dropped(assoc, self.received)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if self.sink is not None:
                self.sink.remove()
        assoc.answer(self.received, kind, result, self.debug)


KIND = RequestKind(evt.EVT_C_STORE, False, HANDLER_FAILED, HANDLER_FAILED,
                   reusable=False, shapes=False, serve=serve_c_store)
set_kind(CStoreRQ, KIND)

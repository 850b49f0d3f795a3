"""C-STORE as SCU: ``send_c_store``, pynetdicom's call, with files streamed from disk.

The accepted context is chosen by the instance's SOP Class UID and transfer
syntax: a context with exactly the instance's transfer syntax (a file's as
stored) is used first. Failing that, an instance in an uncompressed syntax
(Implicit / Explicit VR Little Endian, Explicit VR Big Endian, Deflated) is
re-encoded by pydicom into a context with another uncompressed syntax; a
compressed (encapsulated) instance is never transcoded: ``NoStoreContextError``.

A file whose transfer syntax has a context is not decoded: its data set (after
the file meta) is read and sent in pieces of ``STREAM_PIECE`` bytes, waiting for
the transport to drain between them, so a large instance never sits in memory
whole. Small files are read and sent in one go. While a streamed data set is
being sent no other message may go out on the association (PS3.8 E: one message
at a time): streamed sends wait for each other; an association that both sends
large files and serves requests of its own at the same time is not supported.
A failure half-way through (the file shrank, the call was cancelled) aborts the
association: the peer cannot be told that a data set ends early.
"""

from __future__ import annotations

import asyncio
import io
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset

from .datasets import encode_dataset
from .dimse.commands import encode_command
from .dimse.messages import CStoreRQ, DIMSEMessage
from .errors import AiodimseError, AssociationAbortedError
from .outgoing import OutgoingRequests
from .part10 import read_meta
from .presentation import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from .requests import status_dataset
from .store_scp import read_identity, syntax_flags

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .dimse.assemble import ReceivedMessage
    from .presentation import PresentationContext
    from .settings import AESettings

__all__ = ["NoStoreContextError", "StoreCalls", "STREAM_PIECE", "STREAM_FROM", "data_offset",
           "file_identity"]

STREAM_PIECE = 4 << 20
"""Bytes of a file's data set read and sent at a time."""
STREAM_FROM = 8 << 20
"""Files whose data set is at least this large are streamed; smaller ones read whole."""

_UNCOMPRESSED = frozenset((IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN,
                           EXPLICIT_VR_BIG_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN))
_STREAM_LOCKS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


class NoStoreContextError(AiodimseError, ValueError):
    """No accepted presentation context can carry the instance (see the module)."""


class _StoreCommand:
    """The C-STORE-RQ command set for a Message ID (what the session encodes)."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        CStoreRQ(MessageID=1, **fields)  # validated now: raises before anything is sent
        self.fields = fields

    def encode(self, message_id: int, has_dataset: bool) -> bytes:
        return encode_command(self.message(message_id), has_dataset=has_dataset)

    def message(self, message_id: int) -> DIMSEMessage:
        return CStoreRQ(MessageID=message_id, **self.fields)


def data_offset(fp: BinaryIO) -> tuple[int, str] | None:
    """Where a Part 10 file's data set starts, and its transfer syntax, read from its
    file meta (preamble, ``DICM``, group 0002 in Explicit VR Little Endian); None for
    a file without them."""
    found = read_meta(fp)
    if found is None or 0x0010 not in found[1]:
        return None
    return found[0], found[1][0x0010]


def file_identity(path: Path, fp: BinaryIO, offset: int, meta: dict[int, str]
                   ) -> tuple[str, str]:
    """(SOP Class UID, SOP Instance UID) of a Part 10 file: its data set's first
    elements (read without decoding the rest; pydicom's ``dcmread`` when deflated or
    in a transfer syntax pydicom does not know), else its file meta's (``aiodimse
    store`` scans its files with it too)."""
    syntax = meta[0x0010]
    try:
        readable = syntax != DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN and bool(syntax_flags(syntax))
    except ValueError:
        readable = False
    if readable:
        fp.seek(offset)
        sop_class, sop_instance = read_identity(fp, syntax)
    else:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=[0x00080016, 0x00080018])
        sop_class, sop_instance = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
    return (str(sop_class or meta.get(0x0002, "")), str(sop_instance or meta.get(0x0003, "")))


class StoreCalls:
    """``send_c_store``; a mixin of ``Association``, as ``ServiceCalls``."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by Association
        ae: AESettings
        accepted_contexts: list[PresentationContext]
        dimse_timeout: float | None
        proto: Any
        _outgoing: Any
        loop: asyncio.AbstractEventLoop
        clock: Callable[[], float]

        def _request(self, context: PresentationContext, command: Any,
                     dataset: Dataset | None, data: bytes | None = None
                     ) -> Awaitable[ReceivedMessage]: ...

        def open_session(self) -> Any: ...

        def send_pdus(self, pdus: bytes) -> None: ...

        def abort(self, *, source: int = 0, reason: int = 0) -> None: ...
        is_established: bool

    def _store_context(self, sop_class: str, syntax: str | None) -> tuple[PresentationContext,
                                                                           bool]:
        """The context for an instance, and whether its data must be re-encoded."""
        candidates = [c for c in self.accepted_contexts
                      if c.abstract_syntax == sop_class and c.as_scu]
        if not candidates:
            raise NoStoreContextError(f"no accepted presentation context for {sop_class}")
        for ctx in candidates:
            if ctx.transfer_syntax == syntax:
                return ctx, False
        if syntax is None or syntax in _UNCOMPRESSED:
            for ctx in candidates:
                if ctx.transfer_syntax in _UNCOMPRESSED:
                    return ctx, True
        offered = ", ".join(c.transfer_syntax for c in candidates)
        raise NoStoreContextError(
            f"no accepted context for {sop_class} in {syntax} (accepted: {offered}); "
            "compressed data sets are not transcoded")

    async def send_c_store(
        self,
        dataset: Dataset | str | os.PathLike[str],
        msg_id: int | None = None,
        priority: int = 0,
        originator_aet: str | None = None,
        originator_id: int | None = None,
    ) -> Dataset:
        """C-STORE of a Dataset or a Part 10 file: returns the status Dataset.

        ``msg_id`` is accepted for pynetdicom's signature; the association numbers
        its requests itself. ``priority``: 0 medium, 1 high, 2 low. The Move
        Originator fields are for C-MOVE sub-operations. Raises NoStoreContextError
        when no accepted context fits (module doc).
        """
        del msg_id
        fields: dict[str, Any] = {"Priority": priority}
        if originator_aet is not None:
            fields["MoveOriginatorApplicationEntityTitle"] = originator_aet
        if originator_id is not None:
            fields["MoveOriginatorMessageID"] = originator_id
        if isinstance(dataset, Dataset):
            return await self._store_dataset(dataset, fields)
        path = Path(dataset)
        with open(path, "rb") as fp:
            found = read_meta(fp)
            if found is not None and 0x0010 in found[1]:
                offset, meta = found
                syntax = meta[0x0010]
                size = os.fstat(fp.fileno()).st_size - offset
                sop_class, sop_instance = file_identity(path, fp, offset, meta)
                ctx, recode = self._store_context(sop_class, syntax)
                if not recode:
                    fields |= {"AffectedSOPClassUID": sop_class,
                               "AffectedSOPInstanceUID": sop_instance}
                    command = _StoreCommand(fields)
                    fp.seek(offset)
                    if size >= STREAM_FROM:
                        received = await self._send_streamed(ctx, command, fp, size)
                    else:
                        received = await self._request(ctx, command, None, fp.read())
                    return status_dataset(received.message)
        return await self._store_dataset(dcmread(path, force=True), fields)

    async def _store_dataset(self, ds: Dataset, fields: dict[str, Any]) -> Dataset:
        """A Dataset: encoded in the context's transfer syntax (its own where it can)."""
        meta = getattr(ds, "file_meta", None)
        syntax = meta.get("TransferSyntaxUID") if meta is not None else None
        implicit, little = getattr(ds, "original_encoding", (None, None))
        if syntax is None and implicit is not None:
            syntax = (IMPLICIT_VR_LITTLE_ENDIAN if implicit else
                      EXPLICIT_VR_LITTLE_ENDIAN if little else EXPLICIT_VR_BIG_ENDIAN)
        ctx, _recode = self._store_context(str(ds.SOPClassUID), str(syntax) if syntax else None)
        fields |= {"AffectedSOPClassUID": str(ds.SOPClassUID),
                   "AffectedSOPInstanceUID": str(ds.SOPInstanceUID)}
        command = _StoreCommand(fields)
        ts = ctx.transfer_syntax
        if ts not in _UNCOMPRESSED:  # encapsulated pixel data: written as Explicit VR LE
            syntax_flags(ts)  # (a syntax pydicom knows)
            ts = EXPLICIT_VR_LITTLE_ENDIAN
        data = encode_dataset(ds, ts)
        received = await self._request(ctx, command, None, data)
        return status_dataset(received.message)

    async def _send_streamed(self, ctx: PresentationContext, command: _StoreCommand,
                             fp: io.BufferedReader, size: int) -> ReceivedMessage:
        """Send a request whose data set is ``size`` bytes read from ``fp`` in pieces."""
        lock = _STREAM_LOCKS.get(self)
        if lock is None:
            lock = _STREAM_LOCKS[self] = asyncio.Lock()
        async with lock:
            proto = self.proto
            if not self.is_established or proto is None:
                raise AssociationAbortedError("the association is not established")
            session = self.open_session()
            if self._outgoing is None:  # made by a first request of any kind
                self._outgoing = OutgoingRequests(self, self.loop, self.clock)  # type: ignore[arg-type]
            outgoing = self._outgoing
            while not session.can_invoke:  # the peer's window: wait for a response
                waiter = self.loop.create_future()
                outgoing.invoke_waiters.append(waiter)
                await waiter
            message_id, pdus = session.send_request_streamed(ctx.context_id, command,
                                                             proto.clock())
            fut = proto.response_future()
            outgoing.futures[message_id] = fut
            complete = False
            try:
                self.send_pdus(pdus)
                buffer = bytearray(min(STREAM_PIECE, size) or 2)
                view = memoryview(buffer)
                left = size
                while left:
                    want = min(len(buffer), left)
                    got = fp.readinto(view[:want])
                    if got != want:
                        raise AssociationAbortedError(
                            f"the file ended {left - (got or 0)} bytes early: aborting")
                    left -= want
                    self.send_pdus(session.data_pdus(ctx.context_id, view[:want], not left))
                    await proto.drain()
                    if not self.is_established:
                        raise AssociationAbortedError("the association ended while sending")
                complete = True
            finally:
                if not complete:
                    outgoing.futures.pop(message_id, None)
                    session.forget(message_id)
                    self.abort()
            session.sent(message_id, proto.clock(), self.dimse_timeout)
            if outgoing.timer is None and self.dimse_timeout is not None:
                outgoing._arm_timer(session)
        result: ReceivedMessage = await fut
        return result


"""Incremental PDU receive buffer with limits checked at the 6-byte header.

A peer declares a PDU-length of up to 4 GiB; the reader refuses an unknown PDU type
or an over-limit length as soon as the header is in, before buffering any of the
body (hyperframe / h11 style), so a hostile length never turns into memory use.
"""

from __future__ import annotations

import struct
from typing import NoReturn, cast

from aiodimse.errors import RemoteProtocolError

from .codec import PDU_HEADER_SIZE, decode_pdata_at, decode_pdu
from .codes import AbortReason, AbortSource, PDUType
from .pdus import PDU, Fragment

__all__ = ["PDUReader", "DEFAULT_READ_AHEAD"]

_HEADER = struct.Struct(">BBI")
# A P-DATA-TF header and its first PDV's header, read in one call.
_PDU_AND_PDV = struct.Struct(">BxIIBB")
_HEADERS = _PDU_AND_PDV.size
# PDUs up to this size have their PDV's bytes copied out rather than viewed: slicing a
# few hundred bytes costs less than making a memoryview (and, for a command set, than
# the copy its decoder would make of the view).
_COPIED = 1024
_FIXED_LENGTH = 4  # A-ASSOCIATE-RJ, A-RELEASE-RQ/RP, A-ABORT
# Plain ints: comparing with an IntEnum member costs a class attribute lookup each time.
_P_DATA_TF = int(PDUType.P_DATA_TF)
_ASSOCIATE_TYPES = frozenset((int(PDUType.A_ASSOCIATE_RQ), int(PDUType.A_ASSOCIATE_AC)))
_FIXED_TYPES = frozenset(
    int(t)
    for t in (PDUType.A_ASSOCIATE_RJ, PDUType.A_RELEASE_RQ, PDUType.A_RELEASE_RP, PDUType.A_ABORT)
)

DEFAULT_READ_AHEAD = 1 << 20
"""Bytes the reader holds beyond the largest allowed PDU before it calls it a flood."""


class PDUReader:
    """Turns a byte stream into PDUs: ``feed`` bytes, then call ``next_pdu`` until None.

    ``max_associate_length`` bounds the PDU-length of A-ASSOCIATE-RQ/AC and
    ``max_pdata_length`` that of P-DATA-TF (after the 6-byte header, as the Maximum
    Length sub-item does, PS3.8 D.1). The upper layer lowers ``max_pdata_length`` to
    its negotiated value after association; it must stay positive (pass the hard cap
    when the negotiated value is 0, "unlimited"). ``max_buffered`` bounds what the
    reader holds in total, i.e. when the caller feeds much more than it drains;
    ``None`` means the largest allowed PDU plus ``DEFAULT_READ_AHEAD``.

    Any ``RemoteProtocolError`` kills the reader: every later call raises it again,
    since the stream position is lost and the association must be aborted.

    Storage: a chunk fed while nothing is pending is kept as is (``_chunk``, read from
    ``_pos``), so the usual case, whole PDUs in one received ``bytes``, copies nothing;
    only a partial tail moves into the ``bytearray`` (``_buf``). At most one of the
    two holds bytes at any time.
    """

    __slots__ = (
        "_buf",
        "_chunk",
        "_error",
        "_limit",
        "_max_associate_length",
        "_max_buffered",
        "_max_pdata_length",
        "_pos",
    )

    def __init__(
        self,
        *,
        max_associate_length: int = 1 << 20,
        max_pdata_length: int = 1 << 24,
        max_buffered: int | None = None,
    ) -> None:
        if max_associate_length < 1 or max_pdata_length < 1 or (
            max_buffered is not None and max_buffered < 1
        ):  # one test for the usual case (a reader per connection)
            _positive("max_associate_length", max_associate_length)
            _positive("max_pdata_length", max_pdata_length)
            _positive("max_buffered", cast(int, max_buffered))
        self._buf = bytearray()
        self._chunk: bytes | None = None
        self._pos = 0
        self._error: RemoteProtocolError | None = None
        self._max_associate_length = max_associate_length
        self._max_pdata_length = max_pdata_length
        self._max_buffered = max_buffered
        self._limit = self.max_buffered

    # -- limits ---------------------------------------------------------------
    @property
    def max_associate_length(self) -> int:
        """Largest PDU-length accepted for A-ASSOCIATE-RQ/AC."""
        return self._max_associate_length

    @max_associate_length.setter
    def max_associate_length(self, value: int) -> None:
        self._max_associate_length = _positive("max_associate_length", value)
        self._limit = self.max_buffered

    @property
    def max_pdata_length(self) -> int:
        """Largest PDU-length accepted for P-DATA-TF; set after negotiation."""
        return self._max_pdata_length

    @max_pdata_length.setter
    def max_pdata_length(self, value: int) -> None:
        if value < 1:
            _positive("max_pdata_length", value)
        self._max_pdata_length = value
        self._limit = self.max_buffered

    @property
    def max_buffered(self) -> int:
        """Most bytes held at once; beyond it the peer is flooding an undrained reader."""
        if self._max_buffered is not None:
            return self._max_buffered
        associate, pdata = self._max_associate_length, self._max_pdata_length
        largest = associate if associate > pdata else pdata  # max(): ~10x the cost
        return PDU_HEADER_SIZE + largest + DEFAULT_READ_AHEAD

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as PDUs (for back-pressure decisions)."""
        chunk = self._chunk
        return len(self._buf) if chunk is None else len(chunk) - self._pos

    # -- the stream -----------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes; raises at once if the next PDU's header is invalid."""
        if self._error is not None:
            self._raise_dead()
        buf = self._buf
        if not buf and self._chunk is None:
            # Nothing pending: keep the chunk itself (the hot path copies nothing).
            chunk = data if type(data) is bytes else bytes(data)
            size = len(chunk)
            if size >= PDU_HEADER_SIZE:
                self._pdu_size(chunk, 0)
                if size > self._limit:
                    self._flooded(size)
                self._chunk = chunk
                self._pos = 0
                return
            data = chunk
        elif self._chunk is not None:
            self._spill(self._chunk)
            buf = self._buf
        missing = PDU_HEADER_SIZE - len(buf)
        if missing > 0:
            # Complete the front header first and judge it before taking any body bytes.
            view = memoryview(data)
            buf += view[:missing]
            if len(buf) < PDU_HEADER_SIZE:
                return
            self._pdu_size(buf, 0)
            buf += view[missing:]
        else:
            buf += data
        if len(buf) > self._limit:
            self._flooded(len(buf))

    def next_pdu(self) -> PDU | None:
        """The next whole PDU, or None until more bytes are fed."""
        if self._error is not None:
            self._raise_dead()
        chunk = self._chunk
        if chunk is not None:
            pos = self._pos
            end = len(chunk)
            if end - pos >= PDU_HEADER_SIZE:
                pdu_type, _, length = _HEADER.unpack_from(chunk, pos)
                if pdu_type == _P_DATA_TF and length <= self._max_pdata_length:
                    stop = pos + PDU_HEADER_SIZE + length  # the usual PDU, checked inline
                else:
                    stop = pos + self._pdu_size(chunk, pos)
                if stop <= end:
                    if stop == end:
                        self._chunk = None
                    else:
                        self._pos = stop
                    try:
                        if pdu_type == _P_DATA_TF:
                            return decode_pdata_at(memoryview(chunk), pos, stop)
                        if pos == 0 and stop == end:  # the chunk is the PDU
                            return decode_pdu(chunk)
                        return decode_pdu(memoryview(chunk)[pos:stop])
                    except RemoteProtocolError as exc:
                        self._die(exc)
            # A partial PDU at the end: keep its bytes until the rest comes.
            self._spill(chunk)
            return None
        buf = self._buf
        if len(buf) < PDU_HEADER_SIZE:
            return None
        size = self._pdu_size(buf, 0)
        extra = len(buf) - size
        if extra < 0:
            return None
        # Copy whichever is smaller: the PDU out of the buffer, or what follows it into
        # a new buffer (then the old one becomes the PDU's storage, which the PDVs'
        # memoryviews keep alive; nothing resizes it again).
        if extra < size:
            self._buf = bytearray(memoryview(buf)[size:]) if extra else bytearray()
            data: bytes | memoryview = memoryview(buf).toreadonly()[:size]
        else:
            view = memoryview(buf)
            try:
                data = bytes(view[:size])
            finally:
                view.release()
            del buf[:size]
        try:
            return decode_pdu(data)
        except RemoteProtocolError as exc:
            self._die(exc)

    def whole_pdu(self, data: bytes | bytearray | memoryview) -> PDU | None:
        """``data`` decoded, if it is one whole PDU and nothing is pending; else None.

        None takes nothing: ``feed`` the data as usual. The chunk a peer's
        A-ASSOCIATE-RQ (or -AC) usually comes in is read in one step, judged exactly
        as ``feed`` and ``next_pdu`` would judge it (an invalid PDU raises).
        """
        size = len(data)
        if (self._chunk is not None or self._buf or self._error is not None
                or type(data) is not bytes or size < PDU_HEADER_SIZE or size > self._limit):
            return None
        if self._pdu_size(data, 0) != size:
            return None
        try:
            return decode_pdu(data)
        except RemoteProtocolError as exc:
            self._die(exc)

    def pdata_at_once(self, data: bytes | bytearray | memoryview) -> tuple[Fragment, ...] | None:
        """The PDVs of a chunk that is exactly the usual message, read in place (hot path).

        The usual chunk in the data transfer states is a message of one P-DATA-TF PDU
        of one PDV (a command alone, a response) or of two (a command, then its data
        set), with nothing pending. Such a chunk's PDVs are returned as plain
        ``Fragment`` tuples, as ``feed_pdata`` would return them; a PDV's data is a
        copy when its PDU is up to 1 kB, else a read-only view into ``data``.
        Anything else returns None and consumes nothing: ``feed_pdata`` (or
        ``feed``) then takes the chunk and judges it as usual.
        """
        end = len(data)
        if (end < _HEADERS or self._chunk is not None or self._buf or self._error is not None
                or type(data) is not bytes or end > self._limit):
            return None
        limit = self._max_pdata_length
        unpack = _PDU_AND_PDV.unpack_from
        pdu_type, length, item_length, context_id, control = unpack(data, 0)
        stop = PDU_HEADER_SIZE + length
        if (stop > end or item_length + 4 != length or item_length < 2
                or pdu_type != _P_DATA_TF or length > limit):
            return None
        if stop == end:
            pdv = data[_HEADERS:] if stop <= _COPIED else memoryview(data)[_HEADERS:]
            return ((context_id, control, pdv),)
        if end - stop < _HEADERS:
            return None
        pdu_type, length, item_length, second_id, second_control = unpack(data, stop)
        if (stop + PDU_HEADER_SIZE + length != end or item_length + 4 != length
                or item_length < 2 or pdu_type != _P_DATA_TF or length > limit):
            return None
        start = stop + _HEADERS
        if stop <= _COPIED and end - stop <= _COPIED:
            return ((context_id, control, data[_HEADERS:stop]),
                    (second_id, second_control, data[start:]))
        view = memoryview(data)
        first: bytes | memoryview = (
            data[_HEADERS:stop] if stop <= _COPIED else view[_HEADERS:stop]
        )
        second = data[start:] if end - stop <= _COPIED else view[start:]
        return ((context_id, control, first), (second_id, second_control, second))

    def feed_pdata(
        self, data: bytes | bytearray | memoryview
    ) -> tuple[tuple[Fragment, ...], bool]:
        """``feed(data)``, then the PDVs of every whole P-DATA-TF at its front.

        For the data transfer states: the PDVs of consecutive PDUs come in one tuple,
        as plain ``Fragment`` tuples, without PDU objects (``pdata_at_once`` reads
        the usual chunk; the others are scanned here). Anything else (another PDU
        type, an over-limit length, a partial or invalid PDU) stops the scan and is
        left, held, for ``next_pdu``, which judges it exactly as usual. The second
        value tells whether anything is held for ``next_pdu``.
        """
        at_once = self.pdata_at_once(data)
        if at_once is not None:
            return at_once, False
        if self._buf and type(data) is bytes and _BULK <= len(data) <= self._limit:
            completed = self._complete_held(data)
            if completed is not None:
                return completed
        if (self._chunk is not None or self._buf or self._error is not None
                or type(data) is not bytes or len(data) > self._limit):
            self.feed(data)
            chunk = self._chunk
            if chunk is None:  # all of it went to the buffer: next_pdu's business
                return (), True
            pos = self._pos
        else:
            chunk, pos = data, 0
        pdvs, pos = _scan_pdata(chunk, pos, self._max_pdata_length)
        if pos < len(chunk):
            self._chunk = chunk  # the rest, for next_pdu (which checks its header)
            self._pos = pos
            return pdvs, True
        self._chunk = None
        return pdvs, False

    # -- internals ------------------------------------------------------------
    def _complete_held(self, data: bytes) -> tuple[tuple[Fragment, ...], bool] | None:
        """``feed_pdata`` when the buffer holds the start of a P-DATA-TF that ``data``
        completes: only its missing bytes are copied, the rest of ``data`` is read in
        place. A message of 16 kB PDUs in 256 kB chunks ends one PDU inside each
        chunk: without this, every byte after the first chunk went through the
        buffer, twice copied. None, with nothing consumed, for anything else."""
        buf = self._buf
        if len(buf) < PDU_HEADER_SIZE or self._error is not None:
            return None
        pdu_type, _, length = _HEADER.unpack_from(buf, 0)
        limit = self._max_pdata_length
        missing = PDU_HEADER_SIZE + length - len(buf)  # (the header was judged when held)
        if pdu_type != _P_DATA_TF or length > limit or missing > len(data):
            return None
        buf += memoryview(data)[:missing]
        held, held_end = _scan_pdata(buf, 0, limit)
        if held_end != len(buf):  # not plain PDVs: next_pdu judges it, as before
            self.feed(memoryview(data)[missing:])
            return (), True
        self._buf = bytearray()  # the old one is the PDVs' storage now: never resized
        pdvs, pos = _scan_pdata(data, missing, limit)
        if pos < len(data):
            self._chunk = data  # the rest, for next_pdu (which checks its header)
            self._pos = pos
            return held + pdvs, True
        return held + pdvs, False

    def _spill(self, chunk: bytes) -> None:
        """Move the unread rest of the held ``chunk`` into the (empty) buffer."""
        self._buf = bytearray(memoryview(chunk)[self._pos :])
        self._chunk = None
        self._pos = 0

    def _pdu_size(self, buf: bytes | bytearray, pos: int) -> int:
        """Check the header at ``pos`` in ``buf``; return the whole PDU's size."""
        pdu_type: int
        length: int
        pdu_type, _, length = _HEADER.unpack_from(buf, pos)
        if pdu_type == _P_DATA_TF:
            limit = self._max_pdata_length
        elif pdu_type in _ASSOCIATE_TYPES:
            limit = self._max_associate_length
        elif pdu_type in _FIXED_TYPES:
            if length != _FIXED_LENGTH:
                self._die(_invalid(f"PDU type 0x{pdu_type:02X} with length {length}, not 4"))
            return PDU_HEADER_SIZE + length
        else:
            self._die(
                RemoteProtocolError(
                    f"unrecognized PDU type 0x{pdu_type:02X}",
                    abort_source=AbortSource.SERVICE_PROVIDER,
                    abort_reason=AbortReason.UNRECOGNIZED_PDU,
                )
            )
        if length > limit:
            self._die(_invalid(f"PDU type 0x{pdu_type:02X} declares length {length} > {limit}"))
        return PDU_HEADER_SIZE + length

    def _flooded(self, size: int) -> NoReturn:
        self._die(
            RemoteProtocolError(
                f"{size} bytes received and not consumed, more than {self._limit}",
                abort_source=AbortSource.SERVICE_PROVIDER,
                abort_reason=AbortReason.NOT_SPECIFIED,
            )
        )

    def _die(self, error: RemoteProtocolError) -> NoReturn:
        self._error = error
        self._buf = bytearray()
        self._chunk = None
        self._pos = 0
        raise error

    def _raise_dead(self) -> NoReturn:
        error = cast(RemoteProtocolError, self._error)
        raise RemoteProtocolError(
            f"PDU stream already failed: {error}",
            abort_source=error.abort_source,
            abort_reason=error.abort_reason,
        )


def _invalid(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        message,
        abort_source=AbortSource.SERVICE_PROVIDER,
        abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
    )


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be positive: {value}")
    return value


# A chunk this large is a bulk transfer (C-STORE's fragments): worth completing a held
# PDU in place. Small chunks (requests of a few hundred bytes, many associations) keep
# the plain path, where the attempt would cost more than the copy it saves.
_BULK = 8192


def _scan_pdata(chunk: bytes | bytearray, pos: int, limit: int
                ) -> tuple[tuple[Fragment, ...], int]:
    """The PDVs of the whole, valid P-DATA-TF PDUs from ``pos``; and where they end."""
    end = len(chunk)
    if end - pos < _HEADERS:
        return (), pos
    unpack = _PDU_AND_PDV.unpack_from
    view = memoryview(chunk)
    pdu_type, length, item_length, context_id, control = unpack(chunk, pos)
    stop = pos + PDU_HEADER_SIZE + length
    out: list[Fragment] = []
    while pdu_type == _P_DATA_TF and length <= limit and stop <= end:
        if item_length + 4 == length and item_length >= 2:
            # One PDV filling the PDU: the usual shape of a message fragment.
            out.append((context_id, control, view[pos + _HEADERS : stop]))
        else:
            try:
                out += decode_pdata_at(view, pos, stop).pdvs
            except RemoteProtocolError:
                break  # next_pdu decodes it again and fails the stream
        pos = stop
        if end - pos < _HEADERS:
            break
        pdu_type, length, item_length, context_id, control = unpack(chunk, pos)
        stop = pos + PDU_HEADER_SIZE + length
    return tuple(out), pos

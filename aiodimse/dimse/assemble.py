"""Reassembly of DIMSE messages from received PDVs (PS3.8 Annex E, PS3.7 6.3).

Feed every PDV of every received P-DATA-TF, in order, to
:meth:`MessageAssembler.feed_pdv`; it returns a :class:`ReceivedMessage` when a
message is complete. Command fragments are copied and joined once (they are small
and capped). Data-set fragments are kept as they come when nothing can change them
(``bytes``, or views of ``bytes``: the received chunks), else copied, and joined once
when the last arrives: one copy of the data set, of exactly its size, and none for
a data set in one fragment, which is handed up as it came. The data set is handed
up undecoded, as ``bytes`` or a read-only ``memoryview``.
The usual small message (a command in one PDV, a data set in one PDV) takes a
short path that decodes the command straight from its PDV.

Errors:

* a command set that cannot be decoded is not an error here: it is reported in
  :attr:`ReceivedMessage.error` once the whole message (its data set included, when
  CommandDataSetType could be read) has arrived, so the association can answer
  with ``error.status`` or abort when ``error.message_id`` is None;
* sequencing violations raise :class:`~aiodimse.errors.RemoteProtocolError` with
  A-ABORT source 2 and reason 2 (unexpected PDU): a data fragment before the
  command set is complete, a command fragment after the command's last fragment, a
  fragment of another presentation context in the middle of a message;
* an unknown presentation context ID (when ``accepted_context_ids`` is given), or an
  odd-length fragment in strict mode, raises it with reason 6 (invalid PDU
  parameter value). By default odd fragments are accepted: PS3.8 E.1 requires even
  ones, but rejecting them helps nobody and the data-set decoder judges the bytes;
* exceeding ``max_command_length`` or ``max_dataset_length`` raises
  :class:`MessageTooLargeError` (a RemoteProtocolError, source 2, reason 0) before
  the offending fragment is stored; the association turns it into an A-ABORT;
* a flood of tiny fragments raises :class:`FragmentFloodError` (a
  MessageTooLargeError: source 2, reason 0, "reason not specified", as the refusal
  is a resource limit, not a malformed PDU).

Sinks: with ``sink_for`` set, each command that announces a data set is offered to
it; a :class:`DatasetSink` it returns takes that data set's fragments as they come
(a C-STORE streamed to a file) instead of the assembler keeping them, and is handed
up as the message's ``dataset``: an empty :class:`Sunk` carrying the sink
(``sink_of``). The assembler does
no I/O itself: the sink does (the asyncio layer's file writer). A sunk data set is
charged nothing against ``max_dataset_length`` (the sink judges its own limit and
reports it when done, so the request can be refused without an abort); the flood
judgement still applies. A sink of a message that never completes is discarded
(``reset``, and so the session's ``end`` on abort).

Memory: a message in several fragments keeps one object per fragment (a view or a
copy, and its list slot: about :data:`FRAGMENT_COST` bytes beyond the data). Every
fragment of a command set or data set after its first is charged its data plus
``FRAGMENT_COST`` against the cap, so empty PDVs cannot hold more than the cap
allows; a part in one fragment (the usual case) is charged its data only. With
``min_fragment_average`` set, a data set whose fragments, past the first
``FLOOD_FREE_FRAGMENTS``, average fewer bytes than that is refused at once as a
flood (a real peer fills its PDUs; the association sets 128, or less for a small
Maximum Length).

After any raised error the assembler is reset; the association is expected to
abort anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiodimse.errors import DIMSEError, RemoteProtocolError

from .commands import NO_DATASET, CommandDecodeError, CommandDecoder
from .messages import DIMSEMessage

__all__ = [
    "DEFAULT_MAX_COMMAND_LENGTH",
    "DEFAULT_MAX_DATASET_LENGTH",
    "ReceivedMessage",
    "MessageTooLargeError",
    "MessageAssembler",
    "FragmentFloodError",
    "FRAGMENT_COST",
    "FLOOD_FREE_FRAGMENTS",
    "DatasetSink",
    "SinkFactory",
    "Sunk",
    "sink_of",
]

DEFAULT_MAX_COMMAND_LENGTH = 64 * 1024
"""Cap on a command set; real ones are a few hundred bytes."""
DEFAULT_MAX_DATASET_LENGTH = 256 * 1024 * 1024
"""Cap on one message's data set (DIMSE-N data sets are small; raise it for storage)."""

FRAGMENT_COST = 192
"""Bytes a kept fragment costs beyond its data (a memoryview and its list slot)."""
FLOOD_FREE_FRAGMENTS = 1024
"""Fragments of one message taken before ``min_fragment_average`` is judged."""

_SOURCE_PROVIDER = 2
_REASON_NOT_SPECIFIED = 0
_REASON_UNEXPECTED_PDU = 2
_REASON_INVALID_PARAMETER = 6


class DatasetSink(Protocol):
    """Where a data set's fragments go instead of memory (see the module).

    ``write`` takes each fragment in order (not kept by the caller after the call:
    copy what must outlive it); ``finish`` follows the last one; ``discard`` is called
    instead when the message never completes. Neither raises for an I/O failure: the
    sink remembers it, and whoever serves the request answers it.
    """

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def finish(self) -> None: ...

    def discard(self) -> None: ...


SinkFactory = Callable[[int, DIMSEMessage], "DatasetSink | None"]
"""``sink_for(context_id, message)``: a sink for the data set the command announces,
or None to keep it in memory as usual. One with a ``close()`` method has it called
when the session ends (``DIMSESession.end``)."""


@dataclass(slots=True)
class ReceivedMessage:
    """One whole received message.

    ``message`` is None exactly when ``error`` is set. ``dataset`` is the raw data
    set in the context's transfer syntax (None when the command said none follows).
    ``shape`` is the command decoder's shape of the command set (see
    :class:`~aiodimse.dimse.commands.CommandDecoder`), or None.

    A data set that went to a sink is an empty :class:`Sunk` (``sink_of``).

    A slotted class, to be treated as read-only: one is built per message and its
    fields are read several times each (slot reads are the fastest attribute reads).
    """

    context_id: int
    message: DIMSEMessage | None
    dataset: bytes | memoryview | None
    error: DIMSEError | None = None
    shape: DIMSEMessage | None = None


class Sunk(bytes):
    """The ``dataset`` of a message whose data set went to a sink: empty, with the sink.

    (Like datasets.Inflated, a marker type: the message keeps its usual fields.)
    """

    sink: DatasetSink


def sink_of(received: ReceivedMessage) -> DatasetSink | None:
    """The sink that took ``received``'s data set, or None."""
    data = received.dataset
    return data.sink if type(data) is Sunk else None


class MessageTooLargeError(RemoteProtocolError):
    """A command set or data set exceeded its configured cap."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"{what} of at least {size} bytes exceeds the limit of {limit}",
            abort_source=_SOURCE_PROVIDER,
            abort_reason=_REASON_NOT_SPECIFIED,
        )
        self.size = size
        self.limit = limit


class FragmentFloodError(MessageTooLargeError):
    """A message came in many fragments far smaller than a real peer sends."""

    def __init__(self, fragments: int, size: int, average: int) -> None:
        RemoteProtocolError.__init__(
            self,
            f"{fragments} fragments carrying {size} bytes (fewer than {average} on average):"
            " a fragment flood",
            abort_source=_SOURCE_PROVIDER,
            abort_reason=_REASON_NOT_SPECIFIED,
        )
        self.size = size
        self.limit = average * fragments


class MessageAssembler:
    """Collects PDVs into messages for one association (messages never interleave)."""

    __slots__ = (
        "_accepted",
        "_awaiting_data",
        "_command_length",
        "_command_parts",
        "_context_id",
        "_data",
        "_data_length",
        "_decoded",
        "_decoder",
        "_error",
        "_fragments",
        "_shape",
        "_sink",
        "_strict_even",
        "max_command_length",
        "max_dataset_length",
        "min_fragment_average",
        "sink_for",
    )

    def __init__(
        self,
        *,
        max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH,
        max_dataset_length: int = DEFAULT_MAX_DATASET_LENGTH,
        accepted_context_ids: Iterable[int] | None = None,
        strict_even_fragments: bool = False,
        min_fragment_average: int = 0,
    ) -> None:
        """``min_fragment_average``: 0 (the default) judges no average (see the module)."""
        self.min_fragment_average = min_fragment_average
        self.max_command_length = max_command_length
        self.max_dataset_length = max_dataset_length
        self._accepted = None if accepted_context_ids is None else frozenset(accepted_context_ids)
        self._strict_even = strict_even_fragments
        self._context_id: int | None = None
        self._command_parts: list[bytes] = []
        self._command_length = 0
        self._decoded: DIMSEMessage | None = None
        self._error: DIMSEError | None = None
        self._shape: DIMSEMessage | None = None
        self._awaiting_data = False  # the command is complete, its data set is due
        self._data: list[bytes | memoryview] | None = None  # fragments of a data set so far
        self._data_length = 0  # charged: data plus FRAGMENT_COST per fragment
        self._fragments = 0  # data fragments kept
        self._decoder = CommandDecoder()
        self._sink: DatasetSink | None = None  # taking the data set in progress
        self.sink_for: SinkFactory | None = None  # see the module: sinks

    @property
    def in_progress(self) -> bool:
        """True between a message's first fragment and its completion."""
        return self._context_id is not None

    def shape_held(self) -> bool:
        """Whether the command decoder remembers a shape (the cache registry asks)."""
        return self._decoder.holds()

    def reset(self) -> None:
        """Drop any partly received message."""
        self._context_id = None
        if self._command_parts:
            self._command_parts = []
        self._command_length = 0
        self._decoded = None
        self._error = None
        self._shape = None
        self._awaiting_data = False
        self._data = None
        self._fragments = 0
        sink = self._sink
        if sink is not None:
            self._sink = None
            sink.discard()

    @property
    def buffered(self) -> int:
        """Bytes charged for the message in progress (for back-pressure budgets)."""
        if self._context_id is None:
            return 0
        return self._command_length + (self._data_length if self._data is not None else 0)

    def _violation(self, text: str, reason: int) -> RemoteProtocolError:
        self.reset()
        return RemoteProtocolError(text, abort_source=_SOURCE_PROVIDER, abort_reason=reason)

    def feed_pdv(
        self, context_id: int, control: int, data: bytes | bytearray | memoryview
    ) -> ReceivedMessage | None:
        """Take one PDV (message control header ``control``, PS3.8 E.2).

        Only bits 0 (command) and 1 (last) of ``control`` are looked at. ``data`` is
        not kept after the call, so it may be a view into a reused buffer.
        """
        if self._sink is not None:
            return self._sunk(context_id, control, data)
        if (self._awaiting_data and control & 0x03 == 0x02 and context_id == self._context_id
                and self._data is None):
            # The usual data set: whole in one fragment after its command, on the
            # command's (checked) context; kept as it came when nothing can change it.
            if type(data) is memoryview:
                size = data.nbytes
                if type(data.obj) is not bytes:
                    data = bytes(data)
            else:
                size = len(data)
                if type(data) is not bytes:
                    data = bytes(data)
            if size <= self.max_dataset_length and not (self._strict_even and size & 1):
                received = _received(context_id, self._decoded, data, self._error, self._shape)
                self._context_id = self._decoded = self._error = self._shape = None
                self._awaiting_data = False
                return received
        if self._accepted is not None and context_id not in self._accepted:
            raise self._violation(
                f"PDV for presentation context {context_id}, which was not accepted",
                _REASON_INVALID_PARAMETER,
            )
        size = data.nbytes if type(data) is memoryview else len(data)
        if self._strict_even and size & 1:
            raise self._violation(f"odd-length fragment ({size} bytes)", _REASON_INVALID_PARAMETER)
        current = self._context_id
        if current is None:
            if control & 0x03 == 0x03:
                # The usual command: one last fragment, nothing in progress.
                if size > self.max_command_length:
                    self.reset()
                    raise MessageTooLargeError("command set", size, self.max_command_length)
                return self._command_done(context_id, data)
        elif context_id != current:
            raise self._violation(
                f"PDV for context {context_id} in the middle of a message on context {current}",
                _REASON_UNEXPECTED_PDU,
            )

        if not control & 0x01:
            if not self._awaiting_data:
                raise self._violation(
                    "data set fragment before the command set is complete", _REASON_UNEXPECTED_PDU
                )
            parts = self._data
            if parts is None:
                if size > self.max_dataset_length:
                    self.reset()
                    raise MessageTooLargeError("data set", size, self.max_dataset_length)
                if control & 0x02:
                    received = _received(
                        context_id, self._decoded, _kept(data), self._error, self._shape
                    )
                    self._context_id = self._decoded = self._error = self._shape = None
                    self._awaiting_data = False
                    return received
                self._data = [_kept(data)]
                self._data_length = size
                self._fragments = 1
                return None
            total = self._data_length + size + FRAGMENT_COST
            fragments = self._fragments + 1
            if fragments > FLOOD_FREE_FRAGMENTS and self.min_fragment_average:
                self._judge_average(fragments, total)
            if total > self.max_dataset_length:
                self.reset()
                raise MessageTooLargeError("data set (with its fragments' cost)", total,
                                           self.max_dataset_length)
            parts.append(_kept(data))
            self._data_length = total
            self._fragments = fragments
            if not control & 0x02:
                return None
            received = _received(context_id, self._decoded, b"".join(parts), self._error,
                                 self._shape)
            self.reset()
            return received

        if self._awaiting_data:
            raise self._violation(
                "command fragment after the command set's last fragment", _REASON_UNEXPECTED_PDU
            )
        total = self._command_length + size
        if self._command_parts:
            total += FRAGMENT_COST
        if total > self.max_command_length:
            self.reset()
            raise MessageTooLargeError("command set (with its fragments' cost)", total,
                                       self.max_command_length)
        self._context_id = context_id
        self._command_parts.append(bytes(data))
        self._command_length = total
        if not control & 0x02:
            return None

        command = b"".join(self._command_parts)
        self._command_parts = []
        self._command_length = 0
        return self._command_done(context_id, command)

    def whole_message(
        self, fragments: Sequence[tuple[int, int, bytes | bytearray | memoryview]]
    ) -> ReceivedMessage | None:
        """The usual request in one step: a command in one PDV, its data set in the next.

        Returns the message when ``fragments`` are exactly that, nothing is in
        progress and every check of ``feed_pdv`` passes (the same message two
        ``feed_pdv`` calls would give); else None, with nothing consumed: feed the
        PDVs to ``feed_pdv``, which judges them as usual. It does not offer the data
        set to ``sink_for``: with a sink factory, use ``feed_pdv`` alone.
        """
        if len(fragments) != 2 or self._context_id is not None:
            return None
        (context_id, control, command), (data_context_id, data_control, data) = fragments
        if (control & 0x03 != 0x03 or data_control & 0x03 != 0x02 or data_context_id != context_id
                or (self._accepted is not None and context_id not in self._accepted)):
            return None
        command_size = command.nbytes if type(command) is memoryview else len(command)
        size = data.nbytes if type(data) is memoryview else len(data)
        if (command_size > self.max_command_length or size > self.max_dataset_length
                or (self._strict_even and (command_size | size) & 1)):
            return None
        decoder = self._decoder
        try:
            message, data_set_type = decoder.decode(command)
        except CommandDecodeError:
            return None
        if data_set_type == NO_DATASET:
            return None
        if type(data) is not bytes:  # (the usual small data set is bytes: no call)
            data = _kept(data)
        return _received(context_id, message, data, None, decoder.shape)

    def _sunk(self, context_id: int, control: int, data: bytes | bytearray | memoryview
              ) -> ReceivedMessage | None:
        """A fragment of a data set going to a sink: ``feed_run`` of that one fragment."""
        return self.feed_run(((context_id, control, data),), 0)[0]

    def feed_run(self, fragments: Sequence[tuple[int, int, bytes | bytearray | memoryview]],
                 index: int) -> tuple[ReceivedMessage | None, int]:
        """``feed_pdv`` of ``fragments[index]``, and, while a sink takes the data set,
        of the fragments after it, in one call: (the message completed, else None;
        the index after the last taken). A sunk 0.5 MB instance is some 33 PDVs: one
        call per received chunk, not three per PDV. The same checks as ``feed_pdv``."""
        sink = self._sink
        if sink is None:
            context_id, control, data = fragments[index]
            return self.feed_pdv(context_id, control, data), index + 1
        expected = self._context_id
        strict = self._strict_even
        judge = self.min_fragment_average
        write = sink.write
        taken = self._fragments
        length = self._data_length
        for context_id, control, data in fragments[index:] if index else fragments:
            if context_id != expected:
                raise self._violation(
                    f"PDV for context {context_id} in the middle of a message on context "
                    f"{expected}", _REASON_UNEXPECTED_PDU)
            if control & 0x01:
                raise self._violation("command fragment after the command set's last "
                                      "fragment", _REASON_UNEXPECTED_PDU)
            size = data.nbytes if type(data) is memoryview else len(data)
            if strict and size & 1:
                raise self._violation(f"odd-length fragment ({size} bytes)",
                                      _REASON_INVALID_PARAMETER)
            taken += 1
            length += size
            index += 1
            if taken > FLOOD_FREE_FRAGMENTS and judge:
                self._judge_average(taken, length + (taken - 1) * FRAGMENT_COST)
            write(data)
            if control & 0x02:
                break
        else:
            self._fragments, self._data_length = taken, length
            return None, index
        sink.finish()
        sunk = Sunk()
        sunk.sink = sink
        received = _received(expected, self._decoded, sunk, self._error,
                             self._shape)
        self._sink = None
        self.reset()
        return received, index

    def _judge_average(self, fragments: int, charged: int) -> None:
        """Refuse the message if its fragments carry too little data on average."""
        size = charged - (fragments - 1) * FRAGMENT_COST  # the first is charged no cost
        if size < fragments * self.min_fragment_average:
            self.reset()
            raise FragmentFloodError(fragments, size, self.min_fragment_average)

    def _command_done(
        self, context_id: int, command: bytes | bytearray | memoryview
    ) -> ReceivedMessage | None:
        """The command set is whole: decode it; complete the message if none follows."""
        error: DIMSEError | None = None
        decoder = self._decoder
        try:
            message, data_set_type = decoder.decode(command)
        except CommandDecodeError as exc:
            # Unknown CommandDataSetType: assume none follows; a data fragment that
            # comes anyway is then a sequencing error (abort).
            error, message, has_dataset = exc, None, bool(exc.has_dataset)
        else:
            has_dataset = data_set_type != NO_DATASET
        if not has_dataset:
            if self._context_id is not None:
                self.reset()
            return _received(context_id, message, None, error, decoder.shape)
        self._context_id = context_id
        self._decoded = message
        self._error = error
        self._shape = decoder.shape
        self._awaiting_data = True
        if self.sink_for is not None and message is not None:
            sink = self.sink_for(context_id, message)
            if sink is not None:
                self._sink = sink
                self._data_length = self._fragments = 0
        return None

def _kept(data: bytes | bytearray | memoryview) -> bytes | memoryview:
    """``data`` itself if nothing can change it (bytes, or a view of bytes), else a copy."""
    if type(data) is bytes or (type(data) is memoryview and type(data.obj) is bytes):
        return data
    return bytes(data)


_new = object.__new__


def _received(
    context_id: int,
    message: DIMSEMessage | None,
    dataset: bytes | memoryview | None,
    error: DIMSEError | None,
    shape: DIMSEMessage | None,
) -> ReceivedMessage:
    """``ReceivedMessage(...)`` without the class call and its ``__init__`` (hot path)."""
    received = _new(ReceivedMessage)
    received.context_id = context_id
    received.message = message
    received.dataset = dataset
    received.error = error
    received.shape = shape
    return received

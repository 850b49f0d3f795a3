"""The DIMSE session: one association's message bookkeeping, sans-IO (PS3.7 9.3.1).

It sits on the upper layer's P-DATA as aioquic's HTTP/3 connection sits on QUIC:
fragments in, events out; told to send requests and responses, it returns the
P-DATA-TF bytes to hand to the upper layer. It keeps:

* reassembly and command decoding (``MessageAssembler``; the association makes
  its session with its first message either way: many carry none);
* our requests awaiting their final response, by Message ID, each with a deadline
  (``next_deadline`` / ``handle_timer(now)``: the DIMSE timeout); Message IDs are
  allocated 1..65535 in order, wrapping, skipping the outstanding ones;
* both operations windows: ``max_invoked`` bounds our outstanding requests,
  ``max_performed`` the peer's requests running at once (0 = unlimited; absent
  negotiation, 1 each). A peer that overruns ours is not refused (peers often
  ignore the window): its requests wait in a queue, charged to ``held``, and come
  out as the running ones are answered;
* release deferral: an A-RELEASE-RQ is answered once the running and queued
  requests have been (``receive_release`` / ``ReleaseReady``);
* the response reuse memo (``ResponseMemo``: a bare status answered before for a
  request of the same shape is the same bytes but for the Message ID).

It never reads a clock (``now`` comes in) and knows nothing of handlers, futures or
asyncio. Rules it keeps:

* A request to serve is reported as its ``ReceivedMessage`` itself, not wrapped:
  one is built per request already, and a wrapper would cost another per message
  on the server's path. Every request so reported is running until the caller
  answers it (``respond``, ``respond_reused``) or gives it up (``drop``).
* A response to a Message ID we did not send (or already got the final response
  for) is reported (``UnknownResponse``) and otherwise ignored.
* A request whose command set cannot be decoded but whose Message ID and command
  can be read is reported as ``BadRequest`` with the status to answer; any other
  undecodable message raises ``RemoteProtocolError`` (A-ABORT source 2, reason 0),
  as framing errors and the size and flood limits of reassembly do.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from aiodimse.errors import DIMSEError, LocalProtocolError, RemoteProtocolError

from .assemble import (
    DEFAULT_MAX_COMMAND_LENGTH,
    DEFAULT_MAX_DATASET_LENGTH,
    MessageAssembler,
    ReceivedMessage,
    SinkFactory,
    sink_of,
)
from .commands import encode_command
from .fragment import encode_data, encode_message
from .memo import WITH_DATASET, ResponseMemo, first_pdu
from .messages import DIMSEMessage

__all__ = [
    "BadRequest",
    "RequestCommand",
    "WindowFull",
    "DIMSESession",
    "ReleaseReady",
    "ResponseReceived",
    "SessionEvent",
    "TimedOut",
    "UnknownResponse",
    "REQUEST_COST",
    "flood_average",
]

REQUEST_COST = 1024
"""Bytes a queued request holds beyond its data set (its message and command objects)."""

_MAX_ID = 0xFFFF
_PENDING = (0xFF00, 0xFF01)
_C_CANCEL = 0x0FFF


def flood_average(max_pdu: int) -> int:
    """The least average fragment size a peer filling its PDUs sends (else: a flood).

    128 bytes, or less when our Maximum Length (``max_pdu``) lets a peer send no more.
    """
    return 128 if not max_pdu else max(1, min(128, (max_pdu - 6) // 2))


# -- events ---------------------------------------------------------------------------


class ResponseReceived(NamedTuple):
    """A response to one of our requests; ``final`` False for a pending (0xFF00/01) one.

    A named tuple: one is made per response on an SCU's path (``tuple.__new__``).
    """

    message_id: int
    received: ReceivedMessage
    final: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownResponse:
    """A response to a Message ID that is not outstanding: ignored."""

    message_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BadRequest:
    """A request whose command set was refused: answer ``status`` (PS3.7 C.4)."""

    context_id: int
    message_id: int
    command_field: int
    status: int
    error: DIMSEError


@dataclass(frozen=True, slots=True, kw_only=True)
class TimedOut:
    """No final response to ``message_id`` within the DIMSE timeout (it is forgotten)."""

    message_id: int


@dataclass(frozen=True, slots=True)
class ReleaseReady:
    """The deferred A-RELEASE-RQ may be answered now: every request has been."""


RELEASE_READY = ReleaseReady()

SessionEvent = ReceivedMessage | ResponseReceived | UnknownResponse | BadRequest | ReleaseReady


class RequestCommand(Protocol):
    """A request's command set, to be encoded once its Message ID is known."""

    def encode(self, message_id: int, has_dataset: bool) -> bytes: ...


class WindowFull(LocalProtocolError):
    """``send_request`` while the invoked window is full: wait for a final response."""


_new_response = tuple.__new__


class DIMSESession:
    """The DIMSE bookkeeping of one established association (see the module)."""

    __slots__ = (
        "_assembler",
        "_memo",
        "_next_id",
        "_outstanding",
        "_partial",
        "_queue",
        "_release_deferred",
        "_sinks",
        "_whole",
        "backlog",
        "context_ids",
        "held",
        "max_invoked",
        "max_performed",
        "peer_max_pdu",
        "running",
    )

    def __init__(
        self,
        *,
        context_ids: Iterable[int],
        peer_max_pdu: int = 0,
        max_invoked: int = 1,
        max_performed: int = 1,
        max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH,
        max_dataset_length: int = DEFAULT_MAX_DATASET_LENGTH,
        min_fragment_average: int = 0,
    ) -> None:
        """``peer_max_pdu``: the peer's Maximum Length (0: none), which our PDUs keep to;
        ``min_fragment_average``: see ``MessageAssembler`` (``flood_average`` gives it)."""
        if max_invoked < 0 or max_performed < 0:
            raise ValueError("window limits must be >= 0 (0 = unlimited)")
        self.context_ids = frozenset(context_ids)
        self.peer_max_pdu = peer_max_pdu
        self.max_invoked = max_invoked
        self.max_performed = max_performed
        self._assembler = MessageAssembler(
            max_command_length=max_command_length,
            max_dataset_length=max_dataset_length,
            accepted_context_ids=self.context_ids,
            min_fragment_average=min_fragment_average,
        )
        # The assembler's one-step path; never taken with a sink factory (set_sink_factory)
        self._sinks = False  # a sink factory is set
        self._whole: Callable[[Sequence[tuple[int, int, bytes | memoryview]]],
                              ReceivedMessage | None] = self._assembler.whole_message
        self._memo = ResponseMemo(peer_max_pdu)
        self._next_id = 0
        # Message ID -> (deadline, timeout); insertion order is sending order
        self._outstanding: dict[int, tuple[float, float | None]] = {}
        self._queue: deque[ReceivedMessage] | None = None  # past our performed window
        self._release_deferred = False
        self._partial = 0  # the message in progress's share of held
        self.running = 0  # peer requests reported and not yet answered
        self.held = 0  # bytes of queued requests and the message in progress
        # The queue is not empty or a release waits: follow_ups() has work.
        self.backlog = False

    # -- receiving ------------------------------------------------------------------

    def receive_fragments(
        self, fragments: Sequence[tuple[int, int, bytes | memoryview]], now: float
    ) -> ReceivedMessage | list[SessionEvent]:
        """Take the PDVs of received P-DATA-TF PDUs, in order; return what they made.

        The usual chunk, one request to run now, is returned as itself (no list: a
        server's path); anything else as a list of events. Raises
        ``RemoteProtocolError`` (carrying the A-ABORT) on framing errors, the size and
        flood limits, and messages that cannot be answered.
        """
        assembler = self._assembler
        if len(fragments) == 2:
            # The usual request: command, then data set, within the window.
            received = self._whole(fragments)
            if received is not None:
                if received.message.is_request:  # type: ignore[union-attr]
                    running = self.running
                    if running < self.max_performed or not self.max_performed:
                        self.running = running + 1
                        return received
                events: list[SessionEvent] = []
                self._classify(received, now, events)
                return events
        events = []
        received = None
        if self._sinks:  # (store_to_file) a sink's run of PDVs in one call
            index, count = 0, len(fragments)
            run = assembler.feed_run
            while index < count:
                received, index = run(fragments, index)
                if received is not None:
                    self._classify(received, now, events)
        else:
            feed = assembler.feed_pdv
            for context_id, control, data in fragments:
                received = feed(context_id, control, data)
                if received is not None:
                    self._classify(received, now, events)
        if received is None or self._partial:  # a message in progress, or was
            partial = assembler.buffered
            if partial != self._partial:
                self.held += partial - self._partial
                self._partial = partial
        return events

    def _classify(self, received: ReceivedMessage, now: float, events: list[SessionEvent]
                  ) -> None:
        msg = received.message
        if msg is None:
            events.append(self._bad_request(received))
            return
        if msg.is_request:
            if msg.command_field == _C_CANCEL:
                # at once, past the window: the request it cancels holds the window
                self.running += 1
                events.append(received)
                return
            running = self.running
            if not self.max_performed or running < self.max_performed:
                self.running = running + 1
                events.append(received)
                return
            queue = self._queue
            if queue is None:
                queue = self._queue = deque()
            queue.append(received)
            self.held += _queued_cost(received)
            self.backlog = True
            return
        message_id: int = msg.MessageIDBeingRespondedTo  # type: ignore[attr-defined]
        entry = self._outstanding.get(message_id)
        if entry is None:
            events.append(UnknownResponse(message_id=message_id))
            return
        final = getattr(msg, "Status", 0) not in _PENDING
        if final:
            del self._outstanding[message_id]
        else:  # the peer is working on it: the timeout starts again
            timeout = entry[1]
            del self._outstanding[message_id]
            self._outstanding[message_id] = (
                math.inf if timeout is None else now + timeout, timeout)
        events.append(_new_response(ResponseReceived, (message_id, received, final)))

    @staticmethod
    def _bad_request(received: ReceivedMessage) -> BadRequest:
        error = received.error
        assert error is not None  # (set exactly when message is None)
        if error.message_id is None or error.command_field is None or (
                error.command_field & 0x8000):
            raise RemoteProtocolError(f"undecodable DIMSE message: {error}",
                                      abort_source=2, abort_reason=0)
        return BadRequest(context_id=received.context_id, message_id=error.message_id,
                          command_field=error.command_field, status=error.status, error=error)

    # -- answering the peer's requests ------------------------------------------------

    def respond_reused(self, received: ReceivedMessage, status: int) -> bytes | None:
        """The response to a running request whose answer is the bare ``status``, if one
        like it was encoded before (then the request is answered); else None (always for
        a request without a shape: the memo keeps none)."""
        pdus = self._memo.lookup(received.shape, status,  # type: ignore[arg-type]
                                 received.context_id,
                                 received.message.MessageID)  # type: ignore[union-attr]
        if pdus is not None:
            self.running -= 1
        return pdus

    def respond_reused_with(self, received: ReceivedMessage, status: int, dataset: bytes
                            ) -> bytes | None:
        """``respond_reused`` for a response carrying ``dataset`` (encoded already): its
        command PDU reused if one like it was sent before, the data set's PDUs after."""
        command = self._memo.lookup(received.shape,  # type: ignore[arg-type]
                                    status + WITH_DATASET, received.context_id,
                                    received.message.MessageID)  # type: ignore[union-attr]
        if command is None:
            return None
        pdus = command + encode_data(received.context_id, dataset, True, self.peer_max_pdu)
        self.running -= 1
        return pdus

    def respond(self, received: ReceivedMessage, response: DIMSEMessage,
                dataset: bytes | memoryview | None, status: int | None = None) -> bytes:
        """Answer a running request: its response's PDUs to send.

        The request counts as answered even if encoding raises. ``status``: the bare
        status the response carries, if it is no more than that and its data set
        (kept for reuse: the whole response, or with a data set its command PDU).
        """
        self.running -= 1
        pdus = self.encode(received.context_id, response, dataset)
        if status is not None and received.shape is not None:
            if dataset is None:
                self._memo.offer(received.shape, status, received.context_id, pdus)
            else:
                self._memo.offer(received.shape, status + WITH_DATASET, received.context_id,
                                 first_pdu(pdus))
        return pdus

    def drop(self, received: ReceivedMessage) -> None:
        """A running request ends without a response (its handler was cancelled)."""
        self.running -= 1

    def encode(self, context_id: int, message: DIMSEMessage,
               dataset: bytes | memoryview | None) -> bytes:
        """Any message as P-DATA-TF PDUs for this peer, no bookkeeping (a ``BadRequest``'s
        answer)."""
        command = encode_command(message, has_dataset=dataset is not None)
        return encode_message(context_id, command, dataset, self.peer_max_pdu)

    def follow_ups(self) -> list[SessionEvent]:
        """After answers: the queued requests the window now admits, then ReleaseReady
        once nothing runs or waits (``backlog`` says whether there may be any)."""
        events: list[SessionEvent] = []
        queue = self._queue
        while queue and (not self.max_performed or self.running < self.max_performed):
            received = queue.popleft()
            self.held -= _queued_cost(received)
            self.running += 1
            events.append(received)
        if self._release_deferred and not self.running and not queue:
            self._release_deferred = False
            events.append(RELEASE_READY)
        self.backlog = bool(queue) or self._release_deferred
        return events

    def receive_release(self) -> bool:
        """The peer asks to release: True to answer now, False to wait for ReleaseReady."""
        if self.running or self._queue:
            self._release_deferred = self.backlog = True
            return False
        return True

    @property
    def release_deferred(self) -> bool:
        return self._release_deferred

    @property
    def queued(self) -> int:
        """Peer requests waiting for our performed window."""
        return len(self._queue) if self._queue else 0

    # -- our requests -----------------------------------------------------------------

    @property
    def can_invoke(self) -> bool:
        """Whether the invoked window has room for one more request of ours."""
        return not self.max_invoked or len(self._outstanding) < self.max_invoked

    @property
    def outstanding(self) -> int:
        """Our requests awaiting their final response."""
        return len(self._outstanding)

    def send_request(self, context_id: int, command: RequestCommand,
                     dataset: bytes | memoryview | None, now: float,
                     timeout: float | None) -> tuple[int, bytes]:
        """Allocate a Message ID and encode the request; (its ID, the PDUs to send).

        Raises ``WindowFull`` when the invoked window is full, and whatever
        ``command.encode`` raises (nothing is recorded then). ``timeout``: seconds
        for its final response (None: none).
        """
        message_id = self._take_id()
        pdus = encode_message(context_id, command.encode(message_id, dataset is not None),
                              dataset, self.peer_max_pdu)
        self._next_id = message_id
        self._outstanding[message_id] = (math.inf if timeout is None else now + timeout,
                                         timeout)
        return message_id, pdus

    def _take_id(self) -> int:
        """The Message ID for a new request of ours; WindowFull when the peer's
        invoked window is full (nothing is recorded either way)."""
        outstanding = self._outstanding
        if self.max_invoked and len(outstanding) >= self.max_invoked:
            raise WindowFull(
                f"{len(outstanding)} requests outstanding, the window allows {self.max_invoked}")
        message_id = self._next_id % _MAX_ID + 1
        return self._free_id() if message_id in outstanding else message_id

    def _free_id(self) -> int:
        """The next Message ID after the last that is not outstanding."""
        outstanding = self._outstanding
        if len(outstanding) >= _MAX_ID:
            raise LocalProtocolError("all 65535 Message IDs are outstanding")
        candidate = self._next_id % _MAX_ID + 1
        while candidate in outstanding:
            candidate = candidate % _MAX_ID + 1
        return candidate

    def forget(self, message_id: int) -> None:
        """Give up waiting for ``message_id`` (its request could not be sent)."""
        self._outstanding.pop(message_id, None)

    def next_deadline(self) -> float | None:
        """When the earliest outstanding request times out (None: none can)."""
        if not self._outstanding:
            return None
        earliest = min(deadline for deadline, _ in self._outstanding.values())
        return None if earliest == math.inf else earliest

    def handle_timer(self, now: float) -> list[TimedOut]:
        """The requests whose deadline has passed, forgotten (the caller aborts)."""
        expired = [i for i, (deadline, _) in self._outstanding.items() if deadline <= now]
        for message_id in expired:
            del self._outstanding[message_id]
        return [TimedOut(message_id=i) for i in expired]

    def end(self) -> None:
        """The association ended: nothing is outstanding, queued or running any more."""
        self._outstanding.clear()
        if self._queue:
            for received in self._queue:  # never to be served: their sinks go
                sink = sink_of(received)
                if sink is not None:
                    sink.discard()
            self._queue.clear()
        self._release_deferred = self.backlog = False
        self.held = self._partial = 0
        self._assembler.reset()
        close = getattr(self._assembler.sink_for, "close", None)
        if close is not None:  # files it made ahead (store_scp.Spool) go
            close()

    # -- data sets not held in memory (C-STORE streamed to or from a file) --------------

    def set_sink_factory(self, sink_for: SinkFactory | None) -> None:
        """Offer each incoming data set to ``sink_for`` (``MessageAssembler``: sinks)."""
        self._assembler.sink_for = sink_for
        self._sinks = sink_for is not None
        self._whole = _never if sink_for is not None else self._assembler.whole_message

    def send_request_streamed(self, context_id: int, command: RequestCommand, now: float
                              ) -> tuple[int, bytes]:
        """A request whose data set follows in pieces (``data_pdus``): its Message ID and
        its command's PDUs. No deadline until ``sent`` says the data set has gone."""
        message_id = self._take_id()
        pdus = encode_message(context_id, command.encode(message_id, True), None,
                              self.peer_max_pdu)
        self._next_id = message_id
        self._outstanding[message_id] = (math.inf, None)
        return message_id, pdus

    def data_pdus(self, context_id: int, chunk: bytes | memoryview, last: bool) -> bytes:
        """The P-DATA-TF PDUs of one piece of a streamed request's data set."""
        return encode_data(context_id, chunk, last, self.peer_max_pdu)

    def sent(self, message_id: int, now: float, timeout: float | None) -> None:
        """A streamed request's data set has gone: its response is due within ``timeout``."""
        if message_id in self._outstanding:
            self._outstanding[message_id] = (
                math.inf if timeout is None else now + timeout, timeout)

    def caches_held(self) -> tuple[int, int]:
        """Entries held by the shape cache and the response memo (the cache registry)."""
        return int(self._assembler.shape_held()), int(self._memo.holds())


def _never(_fragments: object) -> None:
    """The one-step path when data sets may go to sinks: never (feed_pdv offers them)."""
    return


def _queued_cost(received: ReceivedMessage) -> int:
    data = received.dataset
    return REQUEST_COST if data is None else REQUEST_COST + len(data)

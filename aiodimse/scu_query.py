"""C-FIND, C-GET, C-MOVE and C-CANCEL as SCU: pynetdicom's calls, made async.

``send_c_find``/``send_c_get``/``send_c_move`` send the request at once (as
pynetdicom does, so that a C-CANCEL never overtakes it) and return an async
iterator of ``(status, identifier)`` with pynetdicom's values: a pending C-FIND
response yields its decoded match, a pending C-GET/C-MOVE one ``None``, the final
one ``None`` or, for a C-GET/C-MOVE that failed, warned or was cancelled, its
Identifier (the Failed SOP Instance UID List). Each pending response is handed
over as it arrives; at most ``PENDING_LIMIT`` wait for a slow consumer, past that
the association stops being read (the peer waits in its TCP window). Leaving the
iteration early (``aclose``, or the iterator dropped) sends a C-CANCEL-RQ; ``aclose``
then waits for the final response (the DIMSE timeout, restarted by each pending
response, bounds it). A DIMSE timeout or the association's end raises, as the
other ``send_*`` calls do. A C-GET's C-STORE sub-operations are requests to this
association: an ``EVT_C_STORE`` handler bound on it answers them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from .association_log import log
from .datasets import decode_dataset
from .dimse.messages import CCancelRQ, CFindRQ, CGetRQ, CMoveRQ, DIMSEMessage
from .errors import AiodimseError
from .scu import _Command

if TYPE_CHECKING:
    from .dimse.assemble import ReceivedMessage
    from .outgoing import OutgoingRequests, Stream
    from .presentation import PresentationContext
    from .settings import AESettings

__all__ = ["PENDING_LIMIT", "QueryCalls", "QueryResponses", "query_model_uid"]

PENDING_LIMIT = 16
"""Pending responses kept for a slow consumer before the association stops being read."""

# pynetdicom 1.x's query model letters, per service (2.x takes the UIDs only).
_QR = "1.2.840.10008.5.1.4.1.2."
_MODELS: dict[str, dict[str, str]] = {
    "find": {"P": _QR + "1.1", "S": _QR + "2.1", "O": _QR + "3.1",
             "W": "1.2.840.10008.5.1.4.31"},
    "get": {"P": _QR + "1.3", "S": _QR + "2.3", "O": _QR + "3.3", "C": _QR + "4.3",
            "CB": _QR + "5.3"},
    "move": {"P": _QR + "1.2", "S": _QR + "2.2", "O": _QR + "3.2", "C": _QR + "4.2"},
}

_PENDING = (0xFF00, 0xFF01)
# pynetdicom's status members per response (STATUS_OPTIONAL_KEYWORDS)
_FIND_KEYWORDS = ("OffendingElement", "ErrorComment")
_RETRIEVE_KEYWORDS = (
    "ErrorComment",
    "OffendingElement",
    "NumberOfRemainingSuboperations",
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)


def query_model_uid(query_model: str, service: str) -> str:
    """The SOP class UID of a query model: a UID, or a letter (P, S, O, W, C, CB)."""
    model = str(query_model)
    uid = _MODELS[service].get(model)
    if uid is not None:
        return uid
    if model and all(c in "0123456789." for c in model):
        return model
    raise ValueError(f"unknown C-{service.upper()} query model {query_model!r}")


def _status(message: Any, keywords: tuple[str, ...]) -> Dataset:
    """pynetdicom's status Dataset: Status and the response's optional members."""
    status = Dataset()
    status.Status = int(message.Status)
    for keyword in keywords:
        value = getattr(message, keyword, None)
        if value is not None:
            setattr(status, keyword, list(value) if isinstance(value, tuple) else value)
    return status


class _Stream:
    """One request's responses as they arrive (the outgoing side's ``Stream``)."""

    __slots__ = ("assoc", "closing", "context", "final", "find", "held", "message_id",
                 "queue", "waiter")

    def __init__(self, assoc: Any, context: PresentationContext, find: bool) -> None:
        self.assoc = assoc
        self.context = context
        self.find = find
        self.message_id: int | None = None
        self.queue: deque[ReceivedMessage] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.final: asyncio.Task[ReceivedMessage] | None = None
        self.closing = False  # cancelled: pending responses are dropped
        self.held = False  # we stopped reading the association

    # -- from the association (OutgoingRequests) --------------------------------------

    def started(self, message_id: int) -> None:
        self.message_id = message_id
        if self.closing:  # given up while waiting to be sent: cancel once it is out
            self.closing = False
            asyncio.get_running_loop().call_soon(self.cancel)

    def pending(self, received: ReceivedMessage) -> None:
        if self.closing:
            return
        self.queue.append(received)
        if len(self.queue) >= PENDING_LIMIT:  # (again if the read budget restarted it)
            self._hold(True)
        self._wake()

    def _wake(self, _task: object = None) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _hold(self, hold: bool) -> None:
        """Stop or restart reading; a restart leaves a hold of the read budget alone."""
        self.held = hold
        proto = self.assoc.proto
        if proto is None:
            return
        budget = self.assoc._budget
        if hold or budget is None or not budget.reading_held:
            proto.hold_reading(hold)

    # -- to the consumer --------------------------------------------------------------

    def take(self) -> ReceivedMessage | None:
        """The next pending response, if one waits."""
        if not self.queue:
            return None
        received = self.queue.popleft()
        if self.held and len(self.queue) <= PENDING_LIMIT // 2:
            self._hold(False)
        return received

    def done(self, _final: object = None) -> None:
        """The final response came (or the request failed): forget the stream."""
        if self.held:
            self._hold(False)
        outgoing: OutgoingRequests | None = self.assoc._outgoing
        if outgoing is not None and self.message_id is not None:
            outgoing.streams.pop(self.message_id, None)

    def cancel(self) -> None:
        """Send a C-CANCEL-RQ (once) and drop pending responses from now on."""
        if self.closing:
            return
        self.closing = True
        self.queue.clear()
        if self.held:
            self._hold(False)
        final = self.final
        if final is None or final.done() or self.message_id is None:
            return  # (not sent yet: ``started`` cancels it once it is)
        with contextlib.suppress(AiodimseError):
            self.assoc.send_c_cancel(self.message_id, self.context.context_id)


def _retrieved(task: asyncio.Task[Any]) -> None:
    """The final response's error is raised to the consumer, if one is left to see it."""
    if not task.cancelled():
        task.exception()


class QueryResponses:
    """The ``(status, identifier)`` responses of one C-FIND/C-GET/C-MOVE (module doc).

    ``message_id`` is the request's (for ``send_c_cancel``) once it was sent.
    """

    def __init__(self, stream: _Stream, response: Awaitable[ReceivedMessage],
                 settings: AESettings) -> None:
        self._stream = stream
        self._settings = settings
        self._finished = False
        task = asyncio.ensure_future(response)
        stream.final = task
        task.add_done_callback(stream._wake)
        task.add_done_callback(stream.done)  # (also when nobody iterates any more)
        task.add_done_callback(_retrieved)

    @property
    def message_id(self) -> int | None:
        return self._stream.message_id

    def __aiter__(self) -> QueryResponses:
        return self

    async def __anext__(self) -> tuple[Dataset, Dataset | None]:
        stream = self._stream
        while not self._finished:
            received = stream.take()
            if received is not None:
                return self._pending(received)
            final = stream.final
            assert final is not None
            if final.done():
                self._finished = True
                stream.done()
                return self._final(final.result())  # raises the request's error
            stream.waiter = asyncio.get_running_loop().create_future()
            try:
                await stream.waiter
            finally:
                stream.waiter = None
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop early: C-CANCEL, then wait for the final response (DIMSE timeout)."""
        if self._finished:
            return
        self._finished = True
        stream = self._stream
        stream.cancel()
        final = stream.final
        assert final is not None
        try:
            await final
        except AiodimseError as exc:
            log.debug("cancelled request ended without its final response: %s", exc)
        finally:
            stream.done()

    async def __aenter__(self) -> QueryResponses:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # dropped before its final response (a ``break`` without ``aclose``): cancel
        if not self._finished:
            stream = self._stream
            with contextlib.suppress(Exception):
                stream.cancel()
                stream.done()

    def _decode(self, received: ReceivedMessage) -> Dataset | None:
        data = received.dataset
        if data is None:
            return None
        try:
            return decode_dataset(data, self._stream.context.transfer_syntax,
                                  max_inflated_length=self._settings.maximum_dataset_size,
                                  max_inflate_ratio=self._settings.maximum_inflate_ratio)
        except Exception as exc:  # pynetdicom: logged, then (status, None)
            log.error("could not decode the response Identifier: %s", exc)
            return None

    def _pending(self, received: ReceivedMessage) -> tuple[Dataset, Dataset | None]:
        msg = received.message
        if self._stream.find:
            return _status(msg, _FIND_KEYWORDS), self._decode(received)
        return _status(msg, _RETRIEVE_KEYWORDS), None

    def _final(self, received: ReceivedMessage) -> tuple[Dataset, Dataset | None]:
        msg: Any = received.message
        if self._stream.find:
            return _status(msg, _FIND_KEYWORDS), None
        status = _status(msg, _RETRIEVE_KEYWORDS)
        code = int(msg.Status)
        # PS3.4 C.4.2.1.5 / C.4.3.1.4: cancel, warning and failure carry the Failed
        # SOP Instance UID List; success none
        if code == 0x0000:
            return status, None
        return status, self._decode(received)


class QueryCalls:
    """``send_c_find``, ``send_c_get``, ``send_c_move`` and ``send_c_cancel``."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by Association and ServiceCalls
        ae: AESettings
        _outgoing: OutgoingRequests | None

        def _context_for(self, sop_class_uid: str, meta_uid: str | None, *,
                         as_scp: bool = False) -> PresentationContext: ...

        def _request(self, context: PresentationContext, command: _Command,
                     dataset: Dataset | None, data: bytes | None = None,
                     stream: Stream | None = None) -> Awaitable[ReceivedMessage]: ...

        def open_session(self) -> Any: ...

        def send_pdus(self, pdus: bytes) -> None: ...

    def _query(self, service: str, query_model: str, build: Any, identifier: Dataset
               ) -> QueryResponses:
        uid = query_model_uid(query_model, service)
        context = self._context_for(uid, None)
        stream = _Stream(self, context, service == "find")
        response = self._request(context, _Command(lambda i: build(i, uid)), identifier,
                                 stream=stream)
        return QueryResponses(stream, response, self.ae)

    def send_c_find(self, dataset: Dataset, query_model: str, priority: int = 2
                    ) -> QueryResponses:
        """C-FIND: an async iterator of (status, identifier), pynetdicom's values."""
        return self._query("find", query_model, lambda i, uid: CFindRQ(
            MessageID=i, AffectedSOPClassUID=uid, Priority=priority), dataset)

    def send_c_get(self, dataset: Dataset, query_model: str, priority: int = 2
                   ) -> QueryResponses:
        """C-GET: an async iterator of (status, identifier); the C-STORE sub-operations
        go to the association's EVT_C_STORE handler."""
        return self._query("get", query_model, lambda i, uid: CGetRQ(
            MessageID=i, AffectedSOPClassUID=uid, Priority=priority), dataset)

    def send_c_move(self, dataset: Dataset, move_aet: str, query_model: str,
                    priority: int = 2) -> QueryResponses:
        """C-MOVE to ``move_aet``: an async iterator of (status, identifier)."""
        return self._query("move", query_model, lambda i, uid: CMoveRQ(
            MessageID=i, AffectedSOPClassUID=uid, MoveDestination=move_aet,
            Priority=priority), dataset)

    def send_c_cancel(self, msg_id: int, context_id: int | None = None,
                      query_model: str | None = None) -> None:
        """C-CANCEL-RQ for our request ``msg_id`` (no response: the request's final
        response says how it ended). The context is the request's unless given."""
        if context_id is None and query_model is not None:
            for service in ("find", "get", "move"):
                with contextlib.suppress(ValueError):
                    context_id = self._context_for(query_model_uid(query_model, service),
                                                   None).context_id
                    break
        if context_id is None:
            outgoing = self._outgoing
            stream = outgoing.streams.get(msg_id) if outgoing is not None else None
            if stream is None:
                raise ValueError(f"no outstanding C-FIND/GET/MOVE with Message ID {msg_id}: "
                                 "give its context_id or query_model")
            context_id = stream.context.context_id  # type: ignore[attr-defined]
        message: DIMSEMessage = CCancelRQ(MessageIDBeingRespondedTo=msg_id)
        self.send_pdus(self.open_session().encode(context_id, message, None))

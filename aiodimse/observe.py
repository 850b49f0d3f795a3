"""Library hooks: what a server did, for metrics and traces, without the ``serve`` program.

Attach an :class:`Observer` to an AE (``ae.observer = obs``) before
``start_server``, or set ``server.observer`` (it applies to connections accepted
from then on). Its methods are called on the event loop, synchronously, when the
thing happens: they must be quick and must not block (count, note a time). An
exception in one is logged and otherwise ignored: observing never changes what the
server answers. ``Observers(a, b)`` calls several.

Nobody attached costs nothing: the server then builds its connections as before
(no byte counting, no records), and the request path reads one attribute per
request and per answer. What is observed: the associations a ``Server`` accepts
(not the ones an application opens with ``AE.associate``), the requests they
answer, and the storage commitment reports of a ``StorageCommitmentSCP`` whose
``observer`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import rejection_reason
from .logs import get_logger

__all__ = ["AssociationRecord", "Observer", "Observers", "Rejection", "RequestRecord",
           "SERVICE_NAMES", "tell"]

log = get_logger("aiodimse.observe")


class _End(Protocol):
    @property
    def ae_title(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def port(self) -> int: ...


class ObservedAssociation(Protocol):
    """What a record reads of its association (an ``Association``); typed so, observe
    does not import association.py, which imports it."""

    @property
    def requestor(self) -> _End: ...
    @property
    def acceptor(self) -> _End: ...
    @property
    def accepted_contexts(self) -> Sequence[Any]: ...
    @property
    def is_established(self) -> bool: ...
    @property
    def is_rejected(self) -> bool: ...
    @property
    def is_released(self) -> bool: ...
_now = time.monotonic  # not the loop's clock: uvloop's moves once per loop iteration

SERVICE_NAMES = {
    0x0001: "C-STORE", 0x0010: "C-GET", 0x0020: "C-FIND", 0x0021: "C-MOVE",
    0x0030: "C-ECHO", 0x0100: "N-EVENT-REPORT", 0x0110: "N-GET", 0x0120: "N-SET",
    0x0130: "N-ACTION", 0x0140: "N-CREATE", 0x0150: "N-DELETE",
}
"""Request command fields by their DIMSE service names (the ``service`` label)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An A-ASSOCIATE-RJ we sent (PS3.8 Table 9-21); ``reason`` in words."""

    result: int
    source: int
    reason_code: int
    reason: str


@dataclass(slots=True, eq=False)
class RequestRecord:
    """One request a server answered. ``sop_class`` is the negotiated abstract syntax
    of its presentation context (a value from the server's own supported list, so a
    bounded set, whatever UIDs peers put in commands); "" when the context is unknown."""

    message_id: int
    service: str
    sop_class: str
    started: float | None  # time.monotonic(); None: answered without running a handler
    status: int = -1
    latency: float | None = None  # seconds from the handler's start to the answer
    data: dict[Any, Any] = field(default_factory=dict)  # observers' own (spans, ...)


@dataclass(slots=True, eq=False)
class AssociationRecord:
    """One connection a server accepted, from its opening to its end.

    The server makes one per connection when it has an observer; the association
    and the acceptor tell it what happens (the methods without a leading verb are
    theirs), and it tells the observer. ``outcome`` once ended: ``released``,
    ``aborted``, ``rejected``, or ``unassociated`` (closed before an A-ASSOCIATE-AC
    or -RJ went out: a port probe, a timed-out set-up).
    """

    observer: Observer
    association: ObservedAssociation
    opened_at: float
    peer_address: str = ""
    peer_port: int = 0
    calling_ae_title: str = ""
    called_ae_title: str = ""
    accepted_at: float | None = None
    ended_at: float | None = None
    outcome: str = ""
    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    data: dict[Any, Any] = field(default_factory=dict)  # observers' own (spans, ...)
    in_flight: dict[int, RequestRecord] = field(default_factory=dict)  # by Message ID
    _syntaxes: dict[int, str] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        """Seconds from the A-ASSOCIATE-AC to the end (None: not both happened)."""
        if self.accepted_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.accepted_at

    # -- told by the server, the acceptor and the association --------------------

    def opened(self) -> None:
        peer = self.association.requestor
        self.peer_address, self.peer_port = peer.address, peer.port
        self._tell("association_opened", self)

    def accepted(self) -> None:
        assoc = self.association
        if not assoc.is_established:  # the AC could not go out (connection gone)
            return
        self.accepted_at = _now()
        self.calling_ae_title = assoc.requestor.ae_title
        self.called_ae_title = assoc.acceptor.ae_title
        self._syntaxes = {c.context_id: c.abstract_syntax for c in assoc.accepted_contexts}
        self._tell("association_accepted", self)

    def rejected(self, result: int, source: int, reason: int) -> None:
        assoc = self.association
        if not assoc.is_rejected:
            return
        self.calling_ae_title = assoc.requestor.ae_title
        self.called_ae_title = assoc.acceptor.ae_title
        self._tell("association_rejected", self,
                   Rejection(result, source, reason, rejection_reason(source, reason)))

    def ended(self) -> None:
        assoc = self.association
        self.ended_at = _now()
        if assoc.is_rejected:
            self.outcome = "rejected"
        elif self.accepted_at is None:
            self.outcome = "unassociated"
        else:
            self.outcome = "released" if assoc.is_released else "aborted"
        self.in_flight.clear()
        self._tell("association_ended", self)

    def request_started(self, message: Any, context_id: int) -> None:
        """A handler is about to run for ``message`` (a request)."""
        msg_id = int(message.MessageID)
        if msg_id in self.in_flight:  # again after inflating its data set: one request
            return
        request = RequestRecord(msg_id, SERVICE_NAMES.get(message.command_field, "?"),
                                self._syntaxes.get(context_id, ""), _now())
        self.in_flight[msg_id] = request
        self._tell("request_started", self, request)

    def request_answered(self, message_id: int, command_field: int, context_id: int,
                         status: int) -> None:
        """The response to ``message_id`` went out with ``status``."""
        request = self.in_flight.pop(message_id, None)
        if request is None:  # answered by the library before any handler
            request = RequestRecord(message_id, SERVICE_NAMES.get(command_field, "?"),
                                    self._syntaxes.get(context_id, ""), None)
        else:
            request.latency = _now() - (request.started or 0.0)
        request.status = status
        self.requests += 1
        self._tell("request_answered", self, request)

    def _tell(self, name: str, *args: Any) -> None:
        tell(self.observer, name, *args)


def tell(observer: Observer, name: str, *args: Any) -> None:
    """Call ``observer.name(*args)``; an exception is logged, never raised: an
    observer's bug must not change what the library answers or stores."""
    try:
        getattr(observer, name)(*args)
    except Exception as exc:
        log.warning("observer %s.%s raised %s: %s", type(observer).__name__, name,
                    type(exc).__name__, exc)


class Observer:
    """Override what you need; each method does nothing by default.

    Association and request methods get the :class:`AssociationRecord` (the
    association, peer, AE titles, times, counts, bytes, and a ``data`` dict for the
    observer's own state). Times are ``time.monotonic()`` seconds.
    """

    def association_opened(self, record: AssociationRecord) -> None:
        """A connection was accepted; its A-ASSOCIATE-RQ has not come yet."""

    def association_accepted(self, record: AssociationRecord) -> None:
        """The A-ASSOCIATE-AC went out."""

    def association_rejected(self, record: AssociationRecord, rejection: Rejection) -> None:
        """The A-ASSOCIATE-RJ went out."""

    def association_ended(self, record: AssociationRecord) -> None:
        """The connection closed: ``record.outcome``, ``duration``, ``requests``,
        ``bytes_in``/``bytes_out`` (DICOM bytes, after TLS) are final."""

    def request_started(self, record: AssociationRecord, request: RequestRecord) -> None:
        """A request's handler is about to run."""

    def request_answered(self, record: AssociationRecord, request: RequestRecord) -> None:
        """A request's response went out: ``request.status``, ``request.latency`` (None
        when the library answered it without a handler: malformed, or the server
        stopping)."""

    def report_queued(self, transaction_uid: str, calling_ae_title: str,
                      assoc: Any, message_id: int | None) -> None:
        """A storage commitment request was recorded: its report is pending.
        ``assoc``/``message_id``: the association and N-ACTION it came on."""

    def report_sending(self, transaction_uid: str, calling_ae_title: str) -> None:
        """A delivery attempt of the report starts; it ends in ``report_delivered``
        or ``report_failed``."""

    def report_failed(self, transaction_uid: str, calling_ae_title: str, error: str) -> None:
        """The attempt failed (``error`` says why): retried later, or expired
        (``report_expired`` follows)."""

    def report_delivered(self, transaction_uid: str, calling_ae_title: str,
                         latency: float) -> None:
        """The report was acknowledged, ``latency`` s (wall clock) after its request."""

    def report_expired(self, transaction_uid: str, calling_ae_title: str, age: float) -> None:
        """The report's deadline passed undelivered, ``age`` s after its request."""

    def reports_pending(self, count: int) -> None:
        """How many reports wait for delivery now (``serve`` reads it from its store)."""

    def store_call(self, operation: str, seconds: float) -> None:
        """A store call (``store.observer`` set) ended, raising or not:
        ``operation`` is the backend method's name, ``seconds`` from the call to its
        end, waiting behind earlier calls included (what the caller waited)."""

    def worker_restarted(self, slot: int, exit_status: int) -> None:
        """``serve --workers``: worker ``slot`` ended (``exit_status``, negative: the
        signal) and is being restarted."""


class Observers(Observer):
    """Several observers as one: each call goes to each, in order; one that raises
    does not keep the others from theirs."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name == "observers" or not hasattr(Observer, name):
            return object.__getattribute__(self, name)
        observers = object.__getattribute__(self, "observers")

        def fan_out(*args: Any) -> None:
            for observer in observers:
                tell(observer, name, *args)

        return fan_out

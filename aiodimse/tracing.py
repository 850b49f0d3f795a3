"""OpenTelemetry traces from the library hooks (the ``otel`` extra: opentelemetry-api).

``TracingObserver(tracer_provider)`` is an :class:`~aiodimse.observe.Observer` that
makes a span per association a server accepts (``DICOM association``, kind SERVER)
and, inside it, one per DIMSE request (named for its service: ``C-ECHO``,
``N-ACTION``, ...), ended when the response goes out. Attach it as the metrics
observer is attached (``ae.observer``; ``scp.observer`` of a
``StorageCommitmentSCP``), alone or with others (``Observers``).

A storage commitment report is a span of its own (``N-EVENT-REPORT storage
commitment``, kind CLIENT, one per delivery attempt) *linked* to the N-ACTION
request's span, found by the Transaction UID: the report goes out later, on the
requesting association or on a new one, so it is not the request's child. The link
is known to the process that took the request while it runs (bounded: the oldest
links go past ``max_links``); both spans carry ``dicom.transaction_uid`` so that a
report delivered after a restart, or by another worker, is still found by it.

Spans are not made current: a handler's own spans do not nest under the request's.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode

from .observe import AssociationRecord, Observer, Rejection, RequestRecord
from .status import Category, code_to_category

__all__ = ["TracingObserver", "ASSOCIATION_SPAN", "REPORT_SPAN"]

ASSOCIATION_SPAN = "DICOM association"
REPORT_SPAN = "N-EVENT-REPORT storage commitment"

# Enum members as globals (reads off the class are slow; tests/test_enum_reads.py)
_SERVER, _CLIENT = SpanKind.SERVER, SpanKind.CLIENT
_ERROR = StatusCode.ERROR
_FAILURE = Category.FAILURE


class TracingObserver(Observer):
    """Spans for associations, requests and commitment reports (module docstring).

    ``tracer_provider``: None uses OpenTelemetry's global one (``trace.
    set_tracer_provider``); without an SDK configured, spans cost next to nothing.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None, *,
                 max_links: int = 100_000) -> None:
        self.tracer = trace.get_tracer("aiodimse", tracer_provider=tracer_provider)
        self.max_links = max_links
        # Transaction UID -> its N-ACTION's span, until the report is delivered or expires
        self._requests: OrderedDict[str, SpanContext] = OrderedDict()
        self._reports: dict[str, Span] = {}  # Transaction UID -> the attempt under way

    # -- associations and requests ------------------------------------------------

    def association_opened(self, record: AssociationRecord) -> None:
        record.data[self] = self.tracer.start_span(
            ASSOCIATION_SPAN, kind=_SERVER,
            attributes={"network.peer.address": record.peer_address,
                        "network.peer.port": record.peer_port})

    def association_accepted(self, record: AssociationRecord) -> None:
        span = record.data.get(self)
        if span is not None:
            span.set_attributes({"dicom.calling_ae_title": record.calling_ae_title,
                                 "dicom.called_ae_title": record.called_ae_title})

    def association_rejected(self, record: AssociationRecord, rejection: Rejection) -> None:
        span = record.data.get(self)
        if span is not None:
            span.set_attributes({"dicom.calling_ae_title": record.calling_ae_title,
                                 "dicom.called_ae_title": record.called_ae_title,
                                 "dicom.rejection.result": rejection.result,
                                 "dicom.rejection.source": rejection.source,
                                 "dicom.rejection.reason": rejection.reason})
            span.set_status(Status(_ERROR, f"rejected: {rejection.reason}"))

    def association_ended(self, record: AssociationRecord) -> None:
        span = record.data.pop(self, None)
        if span is None:
            return
        span.set_attributes({"dicom.association.outcome": record.outcome,
                             "dicom.association.requests": record.requests,
                             "dicom.association.bytes_in": record.bytes_in,
                             "dicom.association.bytes_out": record.bytes_out})
        if record.outcome == "aborted":
            span.set_status(Status(_ERROR, "aborted"))
        span.end()

    def request_started(self, record: AssociationRecord, request: RequestRecord) -> None:
        request.data[self] = self._request_span(record, request)

    def request_answered(self, record: AssociationRecord, request: RequestRecord) -> None:
        span = request.data.pop(self, None)
        if span is None:  # answered by the library before any handler ran
            span = self._request_span(record, request)
        span.set_attribute("dicom.status", request.status)
        if code_to_category(request.status) is _FAILURE:
            span.set_status(Status(_ERROR, f"status 0x{request.status:04X}"))
        span.end()

    def _request_span(self, record: AssociationRecord, request: RequestRecord) -> Span:
        parent = record.data.get(self)
        context = trace.set_span_in_context(parent) if parent is not None else None
        return self.tracer.start_span(
            request.service, context=context, kind=_SERVER,
            attributes={"dicom.message_id": request.message_id,
                        "dicom.sop_class_uid": request.sop_class})

    # -- storage commitment reports -----------------------------------------------

    def report_queued(self, transaction_uid: str, calling_ae_title: str,
                      assoc: Any, message_id: int | None) -> None:
        record = getattr(assoc, "observer", None)
        if not isinstance(record, AssociationRecord) or message_id is None:
            return
        request = record.in_flight.get(message_id)
        span = request.data.get(self) if request is not None else None
        if span is None:
            return
        span.set_attribute("dicom.transaction_uid", transaction_uid)
        self._requests[transaction_uid] = span.get_span_context()
        self._requests.move_to_end(transaction_uid)
        while len(self._requests) > self.max_links:
            self._requests.popitem(last=False)

    def report_sending(self, transaction_uid: str, calling_ae_title: str) -> None:
        self._end_attempt(transaction_uid, "superseded")
        origin = self._requests.get(transaction_uid)
        self._reports[transaction_uid] = self.tracer.start_span(
            REPORT_SPAN, kind=_CLIENT,
            links=[Link(origin)] if origin is not None else None,
            attributes={"dicom.transaction_uid": transaction_uid,
                        "dicom.calling_ae_title": calling_ae_title})

    def report_delivered(self, transaction_uid: str, calling_ae_title: str,
                         latency: float) -> None:
        self._requests.pop(transaction_uid, None)
        span = self._reports.pop(transaction_uid, None)
        if span is not None:
            span.set_attribute("dicom.report.latency_seconds", latency)
            span.end()

    def report_failed(self, transaction_uid: str, calling_ae_title: str, error: str) -> None:
        self._end_attempt(transaction_uid, error)

    def report_expired(self, transaction_uid: str, calling_ae_title: str, age: float) -> None:
        self._requests.pop(transaction_uid, None)
        self._end_attempt(transaction_uid, "expired")

    def _end_attempt(self, transaction_uid: str, error: str) -> None:
        span = self._reports.pop(transaction_uid, None)
        if span is not None:
            span.set_status(Status(_ERROR, error))
            span.end()

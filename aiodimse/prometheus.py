"""Prometheus metrics from the library hooks (the ``metrics`` extra: prometheus_client).

``PrometheusObserver(registry)`` is an :class:`~aiodimse.observe.Observer` that keeps
the metrics listed in docs/cli.md ("Metrics") in ``registry``; attach it to an AE
(``ae.observer``) and to a ``StorageCommitmentSCP`` (``scp.observer``), and expose
the registry as prometheus_client does (``start_http_server``, or a WSGI/ASGI app).
Label values come from bounded sets: services, the server's own SOP classes, status
codes and rejection reasons, never AE titles or addresses a peer chooses.

Under prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set
before it is imported, as ``serve --workers`` does) the gauges add up over the live
processes and the counters over all of them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .observe import AssociationRecord, Observer, Rejection, RequestRecord

__all__ = ["PrometheusObserver", "REQUEST_BUCKETS", "DELIVERY_BUCKETS"]

REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds: a DIMSE-N handler answers in well under a millisecond to a few seconds."""
DELIVERY_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
                    86400.0)
"""Seconds from a commitment request to its acknowledged report: retries reach hours."""
DURATION_BUCKETS = (0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)


class PrometheusObserver(Observer):
    """The server's metrics, named ``aiodimse_*``, in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.connections = Counter(
            "aiodimse_connections", "Connections accepted (before any A-ASSOCIATE-RQ)",
            registry=r)
        self.associations_current = Gauge(
            "aiodimse_associations_current", "Associations established now",
            registry=r, multiprocess_mode="livesum")
        self.associations = Counter(
            "aiodimse_associations", "Connections ended, by outcome: released, aborted, "
            "rejected, unassociated (closed before an A-ASSOCIATE-AC or -RJ)",
            ["outcome"], registry=r)
        self.rejected = Counter(
            "aiodimse_associations_rejected", "A-ASSOCIATE-RJ sent, by reason",
            ["reason"], registry=r)
        self.association_duration = Histogram(
            "aiodimse_association_duration_seconds",
            "From the A-ASSOCIATE-AC to the end of the connection",
            buckets=DURATION_BUCKETS, registry=r)
        self.requests = Counter(
            "aiodimse_requests", "Requests answered, by service, SOP class (the negotiated "
            "abstract syntax) and status (0xNNNN)",
            ["service", "sop_class", "status"], registry=r)
        self.request_duration = Histogram(
            "aiodimse_request_duration_seconds",
            "From a handler's start to its response (requests the library answered "
            "without a handler are not in it)",
            ["service", "sop_class"], buckets=REQUEST_BUCKETS, registry=r)
        self.received_bytes = Counter(
            "aiodimse_received_bytes", "DICOM bytes received (after TLS), added as each "
            "connection ends", registry=r)
        self.sent_bytes = Counter(
            "aiodimse_sent_bytes", "DICOM bytes sent (before TLS), added as each "
            "connection ends", registry=r)
        self.reports_queued = Counter(
            "aiodimse_reports_queued", "Storage commitment requests recorded (each owes a "
            "report)", registry=r)
        self.reports_delivered = Counter(
            "aiodimse_reports_delivered", "Storage commitment reports acknowledged",
            registry=r)
        self.reports_expired = Counter(
            "aiodimse_reports_expired", "Storage commitment reports given up at their "
            "deadline", registry=r)
        self.pending = Gauge(
            "aiodimse_reports_pending", "Storage commitment reports waiting for delivery "
            "(read from the store)", registry=r, multiprocess_mode="livemax")
        self.report_delivery = Histogram(
            "aiodimse_report_delivery_seconds",
            "From a storage commitment request to its acknowledged report",
            buckets=DELIVERY_BUCKETS, registry=r)
        self.store_duration = Histogram(
            "aiodimse_store_duration_seconds",
            "Store (database) calls, by operation (the Store method), from the call to "
            "its end, waiting behind earlier calls included",
            ["operation"], buckets=REQUEST_BUCKETS, registry=r)
        self.worker_restarts = Counter(
            "aiodimse_worker_restarts", "serve --workers: worker processes restarted",
            registry=r)

    def association_opened(self, record: AssociationRecord) -> None:
        self.connections.inc()

    def association_accepted(self, record: AssociationRecord) -> None:
        self.associations_current.inc()

    def association_rejected(self, record: AssociationRecord, rejection: Rejection) -> None:
        self.rejected.labels(rejection.reason).inc()

    def association_ended(self, record: AssociationRecord) -> None:
        self.associations.labels(record.outcome).inc()
        duration = record.duration
        if duration is not None:
            self.associations_current.dec()
            self.association_duration.observe(duration)
        self.received_bytes.inc(record.bytes_in)
        self.sent_bytes.inc(record.bytes_out)

    def request_answered(self, record: AssociationRecord, request: RequestRecord) -> None:
        self.requests.labels(request.service, request.sop_class,
                             f"0x{request.status:04X}").inc()
        if request.latency is not None:
            self.request_duration.labels(request.service, request.sop_class).observe(
                request.latency)

    def report_queued(self, transaction_uid: str, calling_ae_title: str,
                      assoc: object, message_id: int | None) -> None:
        self.reports_queued.inc()

    def report_delivered(self, transaction_uid: str, calling_ae_title: str,
                         latency: float) -> None:
        self.reports_delivered.inc()
        self.report_delivery.observe(max(latency, 0.0))

    def report_expired(self, transaction_uid: str, calling_ae_title: str, age: float) -> None:
        self.reports_expired.inc()

    def reports_pending(self, count: int) -> None:
        self.pending.set(count)

    def store_call(self, operation: str, seconds: float) -> None:
        self.store_duration.labels(operation).observe(seconds)

    def worker_restarted(self, slot: int, exit_status: int) -> None:
        self.worker_restarts.inc()

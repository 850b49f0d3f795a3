"""OpenTelemetry spans (aiodimse.tracing) through the SDK's in-memory exporter: one per
association and per request, and the commitment report linked to its N-ACTION by
Transaction UID when it goes out later on another association."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydicom.uid import generate_uid

from aiodimse import AE, AssociationRejectedError, Event, evt
from aiodimse.observe import Observers
from aiodimse.presentation import VERIFICATION
from aiodimse.services import (
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    DeliveryPolicy,
    Peer,
)
from aiodimse.tracing import ASSOCIATION_SPAN, REPORT_SPAN, TracingObserver

from ._helpers import commit_request, running_scp

CT = "1.2.840.10008.5.1.4.1.1.2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tracing() -> tuple[TracingObserver, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return TracingObserver(provider), exporter


async def _until(what: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def test_report_on_a_later_association_is_linked_to_its_request(tmp_path: Path) -> None:
    tracing, exporter = _tracing()
    port = _free_port()  # nobody listens there yet: the first attempt fails
    policy = DeliveryPolicy(same_association=False, retry_initial=0.2, poll_interval=0.2)
    uid = str(generate_uid())
    peers = {"MODALITY": Peer(host="127.0.0.1", port=port)}
    async with running_scp(tmp_path, peers, policy) as run:
        run.server.observer = run.commitment.observer = Observers(tracing)
        modality = AE("MODALITY")
        modality.add_requested_context(STORAGE_COMMITMENT)
        async with modality.associate("127.0.0.1", run.server.port,
                                      ae_title="ARCHIVE") as assoc:
            status, _ = await assoc.send_n_action(
                commit_request(uid, [(CT, "1.2.3")]), 1, STORAGE_COMMITMENT,
                STORAGE_COMMITMENT_INSTANCE)
            assert status.Status == 0
        await _until(lambda: bool(_named(exporter, REPORT_SPAN)))  # the refused attempt
        receiver = AE("MODALITY")
        receiver.add_supported_context(STORAGE_COMMITMENT, scp_role=True)
        got: list[str] = []

        async def on_report(event: Event) -> tuple[int, None]:
            got.append(str(event.event_information.TransactionUID))
            return 0, None

        server = await receiver.start_server(
            ("127.0.0.1", port), evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
        try:
            await _until(lambda: len(_named(exporter, REPORT_SPAN)) >= 2)
        finally:
            await server.shutdown(1.0)
    assert got == [uid]

    [association] = _named(exporter, ASSOCIATION_SPAN)
    [request] = _named(exporter, "N-ACTION")
    failed, delivered = sorted(_named(exporter, REPORT_SPAN), key=lambda s: s.start_time or 0)
    assert association.kind is SpanKind.SERVER
    assert association.attributes is not None
    assert association.attributes["dicom.calling_ae_title"] == "MODALITY"
    assert association.attributes["dicom.association.outcome"] == "released"
    assert association.attributes["dicom.association.requests"] == 1
    # the request is the association's child, and names the transaction
    assert request.parent is not None and association.context is not None
    assert request.parent.span_id == association.context.span_id
    assert request.attributes is not None and request.context is not None
    assert request.attributes["dicom.transaction_uid"] == uid
    assert request.attributes["dicom.status"] == 0
    assert request.attributes["dicom.sop_class_uid"] == STORAGE_COMMITMENT
    # each attempt: its own span (not the request's child), linked to the request
    for span in (failed, delivered):
        assert span.kind is SpanKind.CLIENT
        assert span.parent is None
        assert [link.context.span_id for link in span.links] == [request.context.span_id]
        assert [link.context.trace_id for link in span.links] == [request.context.trace_id]
        assert span.attributes is not None
        assert span.attributes["dicom.transaction_uid"] == uid
    assert failed.status.status_code is StatusCode.ERROR
    assert delivered.status.status_code is StatusCode.UNSET
    assert tracing._requests == {}  # delivered: the link is let go


async def test_spans_for_requests_failures_and_rejections(tmp_path: Path) -> None:
    tracing, exporter = _tracing()
    scp = AE("ARCHIVE")
    scp.add_supported_context(VERIFICATION)
    scp.require_calling_aet = ["CT1"]

    def fail(event: Event) -> int:
        return 0x0110

    scp.observer = tracing
    server = await scp.start_server(("127.0.0.1", 0), evt_handlers=[(evt.EVT_C_ECHO, fail)])
    try:
        ct = AE("CT1")
        ct.add_requested_context(VERIFICATION)
        assoc = await ct.associate("127.0.0.1", server.port)
        assert (await assoc.send_c_echo()).Status == 0x0110
        assoc.abort()
        stranger = AE("STRANGER")
        stranger.add_requested_context(VERIFICATION)
        with pytest.raises(AssociationRejectedError):
            await stranger.associate("127.0.0.1", server.port)
        await _until(lambda: len(_named(exporter, ASSOCIATION_SPAN)) == 2)
    finally:
        await server.shutdown(1.0)
    [echo] = _named(exporter, "C-ECHO")
    assert echo.attributes is not None and echo.attributes["dicom.status"] == 0x0110
    assert echo.status.status_code is StatusCode.ERROR
    outcomes = {s.attributes["dicom.association.outcome"]: s
                for s in _named(exporter, ASSOCIATION_SPAN) if s.attributes is not None}
    assert set(outcomes) == {"aborted", "rejected"}
    assert outcomes["aborted"].status.status_code is StatusCode.ERROR
    rejected = outcomes["rejected"]
    assert rejected.attributes is not None
    assert rejected.attributes["dicom.rejection.reason"] == "calling AE title not recognized"
    assert rejected.status.status_code is StatusCode.ERROR

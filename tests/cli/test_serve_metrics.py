"""``aiodimse serve --metrics-port``: Prometheus metrics scraped over loopback after real
associations, in one process and over ``--workers`` (one endpoint for all)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import tempfile
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, AssociationRejectedError
from aiodimse.cli.metrics import MULTIPROC_ENV
from aiodimse.presentation import VERIFICATION
from aiodimse.services import MPPS
from aiodimse.services import STORAGE_COMMITMENT as STGCMT

from ._serve import CT, wait_for, write_instance
from .conftest import StartServe
from .test_serve_commitment import listener, request_and_release

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def ports(count: int) -> list[int]:
    """Free ports, all different (held open together while chosen): free_port() twice
    may give one port twice, and serve refuses metrics_port == port."""
    held = []
    try:
        for _ in range(count):
            sock = socket.socket()
            held.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


def scrape(port: int) -> Samples:
    """Every sample of the endpoint, by (name, labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as rsp:
        text = rsp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def _echo(port: int, count: int, title: str = "CT1") -> None:
    ae = AE(title)
    ae.add_requested_context(VERIFICATION)
    async with ae.associate("127.0.0.1", port, ae_title="ARCHIVE") as assoc:
        for _ in range(count):
            assert (await assoc.send_c_echo()).Status == 0


async def _create_twice(port: int, uid: str) -> list[int]:
    ae = AE("CT1")
    ae.add_requested_context(MPPS)
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    async with ae.associate("127.0.0.1", port, ae_title="ARCHIVE") as assoc:
        first, _ = await assoc.send_n_create(ds, MPPS, uid)
        again, _ = await assoc.send_n_create(ds, MPPS, uid)  # exists: 0x0111
    return [int(first.Status), int(again.Status)]


async def test_metrics_after_real_associations(serve: StartServe, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    instance = write_instance(archive)
    port, report_port, metrics_port = ports(3)
    srv = await serve("-aet", "ARCHIVE", "--allow", "CT1", "--allow", "MODALITY",
                      "--index-dir", str(archive), "--peer", f"MODALITY@127.0.0.1:{report_port}",
                      "--metrics-port", str(metrics_port), port=port).ready()
    await _echo(srv.port, 3)
    assert await _create_twice(srv.port, str(generate_uid())) == [0, 0x0111]
    stranger = AE("STRANGER")
    stranger.add_requested_context(VERIFICATION)
    with pytest.raises(AssociationRejectedError):
        await stranger.associate("127.0.0.1", srv.port, ae_title="ARCHIVE")
    async with listener(report_port) as reports:
        status = await request_and_release(srv.port, str(generate_uid()), [(CT, instance)])
        assert status == 0
        event_type, _info, _caller = await asyncio.wait_for(reports.get(), 20)
        assert event_type == 1
        await wait_for(lambda: value(scrape(metrics_port),
                                     "aiodimse_reports_delivered_total") == 1,
                       10, "the delivery counted")
    # Every association (4 of ours, the report's own is outbound) has ended.
    await wait_for(lambda: value(scrape(metrics_port), "aiodimse_associations_total",
                                 outcome="released") == 3, 10, "associations ended")
    m = scrape(metrics_port)
    assert value(m, "aiodimse_requests_total", service="C-ECHO", sop_class=VERIFICATION,
                 status="0x0000") == 3
    assert value(m, "aiodimse_requests_total", service="N-CREATE", sop_class=MPPS,
                 status="0x0000") == 1
    assert value(m, "aiodimse_requests_total", service="N-CREATE", sop_class=MPPS,
                 status="0x0111") == 1
    assert value(m, "aiodimse_requests_total", service="N-ACTION", sop_class=STGCMT,
                 status="0x0000") == 1
    assert value(m, "aiodimse_request_duration_seconds_count", service="C-ECHO",
                 sop_class=VERIFICATION) == 3
    assert value(m, "aiodimse_request_duration_seconds_count", service="N-CREATE",
                 sop_class=MPPS) == 2
    assert value(m, "aiodimse_connections_total") == 4
    assert value(m, "aiodimse_associations_total", outcome="rejected") == 1
    assert value(m, "aiodimse_associations_rejected_total",
                 reason="calling AE title not recognized") == 1
    assert value(m, "aiodimse_associations_current") == 0
    assert value(m, "aiodimse_association_duration_seconds_count") == 3
    # 7 requests with their responses, 3 releases: a few hundred bytes at least each way
    assert value(m, "aiodimse_received_bytes_total") > 700
    assert value(m, "aiodimse_sent_bytes_total") > 500
    assert value(m, "aiodimse_reports_queued_total") == 1
    assert value(m, "aiodimse_report_delivery_seconds_count") == 1
    assert value(m, "aiodimse_reports_expired_total") == 0
    await wait_for(lambda: value(scrape(metrics_port), "aiodimse_reports_pending") == 0, 10,
                   "the pending count refreshed")
    assert value(m, "aiodimse_worker_restarts_total") == 0
    # store latency, by the Store method: both N-CREATEs (the second finds it exists),
    # the commitment recorded, its report marked delivered (the deliverer records them
    # in batches: one call here)
    assert value(m, "aiodimse_store_duration_seconds_count", operation="mpps_create") == 2
    assert value(m, "aiodimse_store_duration_seconds_count", operation="add_commitment") == 1
    assert value(m, "aiodimse_store_duration_seconds_count",
                 operation="mark_delivered_many") == 1
    assert value(m, "aiodimse_store_duration_seconds_sum", operation="mpps_create") > 0
    assert srv.stop() == 0
    assert "metrics on http://127.0.0.1:" in srv.log()


async def test_open_association_counts_as_current(serve: StartServe) -> None:
    port, metrics_port = ports(2)
    srv = await serve("--metrics-port", str(metrics_port), port=port).ready()
    ae = AE("CT1")
    ae.add_requested_context(VERIFICATION)
    assoc = await ae.associate("127.0.0.1", srv.port)
    try:
        await wait_for(lambda: value(scrape(metrics_port),
                                     "aiodimse_associations_current") == 1, 10, "current 1")
    finally:
        assoc.abort()
    await wait_for(lambda: value(scrape(metrics_port), "aiodimse_associations_total",
                                 outcome="aborted") == 1, 10, "the abort counted")
    assert value(scrape(metrics_port), "aiodimse_associations_current") == 0


def _multiproc_directory(pid: int) -> Path:
    """The metrics directory in process ``pid``'s environment."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [entry.split(b"=", 1)[1] for entry in environ
             if entry.startswith(MULTIPROC_ENV.encode() + b"=")]
    assert len(found) == 1, f"no {MULTIPROC_ENV} in worker {pid}'s environment"
    return Path(os.fsdecode(found[0]))


async def test_workers_share_one_endpoint_and_keep_counts_over_a_restart(
        serve: StartServe) -> None:
    port, metrics_port = ports(2)
    srv = await serve("-aet", "ARCHIVE", "--workers", "2",
                      "--metrics-port", str(metrics_port), port=port).ready(count=2)
    await asyncio.gather(*(_echo(srv.port, 2) for _ in range(8)))
    m = scrape(metrics_port)
    assert value(m, "aiodimse_requests_total", service="C-ECHO", sop_class=VERIFICATION,
                 status="0x0000") == 16
    assert value(m, "aiodimse_connections_total") == 8
    workers = [int(pid) for pid in set(re.findall(r"worker \d started: pid (\d+)", srv.log()))]
    assert len(workers) == 2
    directory = _multiproc_directory(workers[1])  # the supervisor's, handed to its workers
    assert directory.name.startswith("aiodimse-metrics-")
    assert directory.parent == Path(tempfile.gettempdir()) and directory.is_dir()
    os.kill(workers[0], signal.SIGKILL)
    await wait_for(lambda: value(scrape(metrics_port), "aiodimse_worker_restarts_total") == 1,
                   15, "the restart counted")
    await wait_for(lambda: srv.log().count(" serving ") >= 3, 20, "the new worker")
    m = scrape(metrics_port)  # the killed worker's counts stay in the totals
    assert value(m, "aiodimse_requests_total", service="C-ECHO", sop_class=VERIFICATION,
                 status="0x0000") == 16
    await _echo(srv.port, 1)
    await wait_for(lambda: value(scrape(metrics_port), "aiodimse_requests_total",
                                 service="C-ECHO", sop_class=VERIFICATION,
                                 status="0x0000") == 17, 10, "one more echo")
    assert value(scrape(metrics_port), "aiodimse_associations_current") == 0
    assert directory.is_dir()
    assert srv.stop() == 0
    # the multiprocess directory goes with the supervisor (looked for by its own name: the
    # other Pythons' suites, run beside this one, make and remove theirs meanwhile)
    assert not directory.exists()


async def test_metrics_port_taken_is_one_line_and_status_1(serve: StartServe) -> None:
    port, second_port, metrics_port = ports(3)
    first = await serve("--metrics-port", str(metrics_port), port=port).ready()
    second = serve("--metrics-port", str(metrics_port), data=first.data.parent / "other",
                   port=second_port)
    await wait_for(second.exited, 20, "the second serve to give up")
    assert second.stop() == 1
    log = second.log()
    assert f"cannot serve metrics on 127.0.0.1:{metrics_port}" in log
    assert "Traceback" not in log


async def test_a_report_nobody_takes_expires_and_is_counted(serve: StartServe) -> None:
    port, report_port, metrics_port = ports(3)  # nobody listens for the report
    srv = await serve("-aet", "ARCHIVE", "--peer", f"MODALITY@127.0.0.1:{report_port}",
                      "--retry-initial", "0.1", "--deadline", "1",
                      "--metrics-port", str(metrics_port), port=port).ready()
    status = await request_and_release(srv.port, str(generate_uid()), [(CT, "1.2.3")])
    assert status == 0
    await wait_for(lambda: value(scrape(metrics_port), "aiodimse_reports_expired_total") == 1,
                   20, "the report expired")
    m = scrape(metrics_port)
    assert value(m, "aiodimse_reports_queued_total") == 1
    assert value(m, "aiodimse_reports_delivered_total") == 0
    assert value(m, "aiodimse_report_delivery_seconds_count") == 0
    assert value(m, "aiodimse_store_duration_seconds_count", operation="expire") == 1
    await wait_for(lambda: value(scrape(metrics_port), "aiodimse_reports_pending") == 0, 15,
                   "nothing pending once it expired")
    assert srv.stop() == 0


async def test_an_undelivered_report_counts_as_pending(serve: StartServe) -> None:
    port, report_port, metrics_port = ports(3)  # nobody listens for the report
    srv = await serve("-aet", "ARCHIVE", "--peer", f"MODALITY@127.0.0.1:{report_port}",
                      "--retry-initial", "30", "--metrics-port", str(metrics_port),
                      port=port).ready()
    assert value(scrape(metrics_port), "aiodimse_reports_pending") == 0
    status = await request_and_release(srv.port, str(generate_uid()), [(CT, "1.2.3")])
    assert status == 0
    # read from the store every few seconds (cli/metrics.py PENDING_POLL)
    await wait_for(lambda: value(scrape(metrics_port), "aiodimse_reports_pending") == 1,
                   15, "the report counted as pending")
    assert srv.stop() == 0

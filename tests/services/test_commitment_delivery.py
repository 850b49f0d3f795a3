"""Report delivery under load: bounded associations per destination and overall, many
reports over one association, and requesters the SCP cannot reach."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from aiodimse import AE, Association, Event, evt
from aiodimse.cli.config import ServeConfig, build_config
from aiodimse.cli.main import build_parser
from aiodimse.services import (
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    DeliveryPolicy,
    Peer,
    StorageCommitmentSCP,
)
from aiodimse.services.storage_commitment import NOT_AUTHORIZED
from aiodimse.store.sqlite import SQLiteStore

from ._helpers import commit_request, running_scp

CT = "1.2.840.10008.5.1.4.1.1.2"


@dataclass
class Receiver:
    """A modality taking reports on associations the SCP opens; counts them."""

    title: str
    port: int = 0
    reports: Counter[str] = field(default_factory=Counter)
    associations: set[Association] = field(default_factory=set)
    peak: int = 0  # most associations open at once

    def live(self) -> int:
        return sum(1 for a in self.associations if a.is_alive)


@dataclass
class Fleet:
    receivers: list[Receiver]
    peak: int = 0  # most associations open at once, all receivers


@asynccontextmanager
async def receivers(*titles: str, hold: float = 0.005) -> AsyncIterator[Fleet]:
    """One listening AE per title; ``hold``: how long each report takes to answer."""
    fleet = Fleet([])
    servers = []
    everyone: set[Association] = set()
    for title in titles:
        rx = Receiver(title)
        ae = AE(title)
        ae.add_supported_context(STORAGE_COMMITMENT, scp_role=True)

        async def on_report(event: Event, rx: Receiver = rx) -> tuple[int, None]:
            rx.associations.add(event.assoc)
            everyone.add(event.assoc)
            rx.peak = max(rx.peak, rx.live())
            fleet.peak = max(fleet.peak, sum(1 for a in everyone if a.is_alive))
            rx.reports[str(event.event_information.TransactionUID)] += 1
            await asyncio.sleep(hold)
            return 0, None

        server = await ae.start_server(
            ("127.0.0.1", 0), evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
        )
        rx.port = server.port
        servers.append(server)
        fleet.receivers.append(rx)
    try:
        yield fleet
    finally:
        for server in servers:
            await server.shutdown(1.0)


async def _flood(port: int, title: str, count: int) -> list[str]:
    """``count`` N-ACTIONs on one association, then gone without a release."""
    ae = AE(title)
    ae.add_requested_context(STORAGE_COMMITMENT)
    uids = [str(generate_uid()) for _ in range(count)]
    assoc = await ae.associate("127.0.0.1", port, ae_title="ARCHIVE")
    for uid in uids:
        status, _ = await assoc.send_n_action(
            commit_request(uid, [(CT, "1.2.3")]), 1, STORAGE_COMMITMENT,
            STORAGE_COMMITMENT_INSTANCE,
        )
        assert status.Status == 0
    assoc.abort()
    await assoc.wait_closed()
    return uids


async def _all_delivered(scp: object, uids: list[str], timeout: float = 60) -> None:
    store = scp.store  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    for uid in uids:
        while (state := await store.commitment_state(uid))[0] != "delivered":
            assert time.monotonic() < deadline, (uid, state)
            await asyncio.sleep(0.02)


async def test_flood_from_one_modality_bounded_associations(tmp_path: Path) -> None:
    """400 requests then a disconnect used to open 400 associations at once."""
    count = 400
    async with receivers("MODALITY") as fleet:
        (rx,) = fleet.receivers
        policy = DeliveryPolicy(same_association=False, retry_initial=0.05,
                                max_per_destination=2, batch_size=16)
        peers = {"MODALITY": Peer(host="127.0.0.1", port=rx.port)}
        async with running_scp(tmp_path, peers, policy) as scp:
            uids = await _flood(scp.server.port, "MODALITY", count)
            await _all_delivered(scp, uids)
    assert set(rx.reports) == set(uids)
    assert max(rx.reports.values()) == 1  # each delivered once
    assert rx.peak <= 2
    # several reports per association (16 a batch, refilled while more are due)
    assert len(rx.associations) <= 2 * count // 16 + 2, len(rx.associations)


async def test_overall_limit_across_destinations(tmp_path: Path) -> None:
    titles = ("MOD1", "MOD2", "MOD3", "MOD4")
    async with receivers(*titles, hold=0.02) as fleet:
        rxs = fleet.receivers
        policy = DeliveryPolicy(same_association=False, retry_initial=0.05,
                                max_concurrent=3, max_per_destination=2, batch_size=4)
        peers = {rx.title: Peer(host="127.0.0.1", port=rx.port) for rx in rxs}
        async with running_scp(tmp_path, peers, policy) as scp:
            sent = await asyncio.gather(*(_flood(scp.server.port, t, 12) for t in titles))
            await _all_delivered(scp, [u for uids in sent for u in uids])
    for rx, uids in zip(rxs, sent, strict=True):
        assert set(rx.reports) == set(uids) and max(rx.reports.values()) == 1
        assert rx.peak <= 2
    assert fleet.peak <= 3


async def test_reports_on_the_requesting_association_in_turn(tmp_path: Path) -> None:
    """A requester that keeps its association open gets every report on it."""
    count = 10
    got: Counter[str] = Counter()
    async with receivers("MODALITY") as fleet:
        (rx,) = fleet.receivers
        policy = DeliveryPolicy(max_per_destination=1, batch_size=4)
        peers = {"MODALITY": Peer(host="127.0.0.1", port=rx.port)}
        async with running_scp(tmp_path, peers, policy) as scp:
            ae = AE("MODALITY")
            ae.add_requested_context(STORAGE_COMMITMENT)
            all_in = asyncio.Event()

            async def on_report(event: Event) -> tuple[int, None]:
                got[str(event.event_information.TransactionUID)] += 1
                if len(got) == count:
                    all_in.set()
                return 0, None

            uids = [str(generate_uid()) for _ in range(count)]
            async with ae.associate("127.0.0.1", scp.server.port, ae_title="ARCHIVE",
                                    evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
                                    ) as assoc:
                for uid in uids:
                    status, _ = await assoc.send_n_action(
                        commit_request(uid, [(CT, "1.2.3")]), 1, STORAGE_COMMITMENT,
                        STORAGE_COMMITMENT_INSTANCE,
                    )
                    assert status.Status == 0
                await asyncio.wait_for(all_in.wait(), 30)
            await _all_delivered(scp, uids)
    assert got == Counter(uids)
    assert not rx.reports  # nothing went on a new association


async def test_unlisted_requester_warned_once_when_it_asks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No AE-table entry and no same-association delivery: the report can never go.
    One WARNING when the request comes, not one per retry."""
    caplog.set_level(logging.DEBUG, "aiodimse.commitment")
    policy = DeliveryPolicy(same_association=False, retry_initial=0.02, retry_max=0.05)
    async with running_scp(tmp_path, {}, policy) as scp:
        # No delivery attempt until the first request is answered: what is logged
        # by then was said at the time of the request.
        gate = threading.Event()
        find = scp.store.db.find_instances

        def gated_find(uids: list[str]) -> dict[str, str]:  # on the store thread
            assert gate.wait(20)
            return find(uids)

        scp.store.db.find_instances = gated_find  # type: ignore[method-assign]
        ae = AE("STRANGER")
        ae.add_requested_context(STORAGE_COMMITMENT)
        uids = [str(generate_uid()) for _ in range(3)]
        try:
            async with ae.associate("127.0.0.1", scp.server.port, ae_title="ARCHIVE"
                                    ) as assoc:
                for n, uid in enumerate(uids):
                    status, _ = await assoc.send_n_action(
                        commit_request(uid, [(CT, "1.2.3")]), 1, STORAGE_COMMITMENT,
                        STORAGE_COMMITMENT_INSTANCE,
                    )
                    assert status.Status == 0
                    if n == 0:
                        warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
                        assert len(warned) == 1, warned
                        assert "STRANGER" in warned[0].getMessage()
                        assert "not in the AE table" in warned[0].getMessage()
                        gate.set()
        finally:
            gate.set()
        store = scp.store
        deadline = time.monotonic() + 20
        for uid in uids:  # many retries later...
            while (state := await store.commitment_state(uid))[1] < 4:
                assert time.monotonic() < deadline, state
                await asyncio.sleep(0.02)
            assert state[0] == "pending"
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1, [r.getMessage() for r in warned]


async def test_unlisted_requester_refused_when_so_configured(tmp_path: Path) -> None:
    policy = DeliveryPolicy(refuse_unlisted_ae=True)
    async with running_scp(tmp_path, {"MODALITY": Peer(host="127.0.0.1", port=9)},
                           policy) as scp:
        store = scp.store
        for title, expected in (("STRANGER", NOT_AUTHORIZED), ("MODALITY", 0x0000)):
            ae = AE(title)
            ae.add_requested_context(STORAGE_COMMITMENT)
            uid = str(generate_uid())
            async with ae.associate("127.0.0.1", scp.server.port, ae_title="ARCHIVE"
                                    ) as assoc:
                status, _ = await assoc.send_n_action(
                    commit_request(uid, [(CT, "1.2.3")]), 1, STORAGE_COMMITMENT,
                    STORAGE_COMMITMENT_INSTANCE,
                )
            assert status.Status == expected
            recorded = await store.commitment_state(uid)
            assert (recorded is not None) == (expected == 0)
        assert NOT_AUTHORIZED == 0x0124  # PS3.7 C.4.x "Refused: not authorized"


def _config(path: Path) -> ServeConfig:
    return build_config(build_parser().parse_args(["serve", "--config", str(path)]))


def test_policy_keys_in_toml(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text("[commitment]\nmax_concurrent = 4\nmax_per_destination = 1\n"
                      "batch_size = 8\nrefuse_unlisted_ae = true\n")
    policy = _config(config).delivery
    assert (policy.max_concurrent, policy.max_per_destination, policy.batch_size,
            policy.refuse_unlisted_ae) == (4, 1, 8, True)
    config.write_text("[commitment]\nmax_per_destination = 0\n")
    with pytest.raises(ValueError, match="max_per_destination"):
        _config(config)


async def test_request_accepted_while_the_runner_polls_is_not_left_waiting(
    tmp_path: Path,
) -> None:
    """The wake-up for a request that comes during a poll is not lost (else the
    report would wait for ``poll_interval``)."""
    policy = DeliveryPolicy(poll_interval=60)
    async with running_scp(tmp_path, {}, policy) as scp:
        commitment = scp.commitment
        poll = commitment.deliverer._poll
        entered, gate = asyncio.Event(), asyncio.Event()

        async def slow_poll() -> float:
            delay = await poll()
            if not gate.is_set():
                entered.set()
                await gate.wait()  # the request is accepted now, during the poll
            return delay

        commitment.deliverer._poll = slow_poll  # type: ignore[method-assign]
        commitment.deliverer._wake.set()
        await asyncio.wait_for(entered.wait(), 10)
        got = asyncio.Event()

        async def on_report(event: Event) -> tuple[int, None]:
            got.set()
            return 0, None

        ae = AE("MODALITY")
        ae.add_requested_context(STORAGE_COMMITMENT)
        async with ae.associate("127.0.0.1", scp.server.port, ae_title="ARCHIVE",
                                evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
                                ) as assoc:
            status, _ = await assoc.send_n_action(
                commit_request(str(generate_uid()), [(CT, "1.2.3")]), 1,
                STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE,
            )
            assert status.Status == 0
            gate.set()
            await asyncio.wait_for(got.wait(), 10)


@pytest.mark.parametrize("steps", [0, 1, 2, 3])
async def test_stop_when_woken_as_it_is_cancelled(tmp_path: Path, steps: int) -> None:
    """``stop()`` ends the runner even when a wake-up coincides with its cancellation
    (``asyncio.wait_for`` before 3.12 can swallow that cancellation)."""
    store = SQLiteStore.in_directory(tmp_path)
    scp = StorageCommitmentSCP(store, AE("ARCHIVE"), {}, DeliveryPolicy(poll_interval=60))
    await scp.start()
    await asyncio.sleep(0.2)  # the runner has polled and sleeps
    scp.deliverer._wake.set()  # as a courier ending, or a request, would
    for _ in range(steps):
        await asyncio.sleep(0)
    runner = scp.deliverer._runner
    assert runner is not None
    stopping = asyncio.ensure_future(scp.stop(grace=1.0))
    done, _ = await asyncio.wait({stopping}, timeout=10)  # a hang guard
    try:
        assert stopping in done and runner.done(), "stop() did not end the runner"
    finally:
        for task in (runner, stopping):
            task.cancel()
        await asyncio.gather(runner, stopping, return_exceptions=True)
        await store.aclose()

"""``aiodimse serve`` nodes on one PostgreSQL database (issue 23): two, as separate
hosts (on two loopback addresses, and in a network namespace each where this
machine allows: netns.py), a storage commitment accepted by node A, A killed with
SIGKILL while delivering its report, and node B delivers it, once; UPS across nodes:
two claims of one workitem at once on A and B, one wins, and a subscriber who
subscribed on B hears of the changes made on A; one node under load while the
database is killed and restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, Association, Event, evt
from aiodimse.services import MPPS
from aiodimse.services import STORAGE_COMMITMENT as STGCMT
from aiodimse.services import STORAGE_COMMITMENT_INSTANCE as STGCMT_INSTANCE
from aiodimse.services.ups import UPS_PULL, UPS_PUSH, UPS_WATCH
from aiodimse.store import Store, open_store

from ..services._ups import workitem
from ..services.ups_fakes import Inbox, listen, subscribe_info
from ..store.pg_cluster import PGCluster
from . import netns
from ._serve import CT, ServeProcess, free_port, wait_for
from .conftest import StartServe
from .test_serve_commitment import _request

LEASE = 2.5  # s a node owns a report it is delivering
NETNS_REQUIRED = os.environ.get("AIODIMSE_NETNS") == "required"  # tests/run.sh as root


@pytest.fixture
def hosts() -> Iterator[Where]:
    """Where the modality (the test) and nodes A and B are: a network namespace each
    (netns.py), the test on the root side of their bridge; where namespaces cannot
    be made (not root, no iproute2), loopback addresses of one host, with a warning
    saying why (AIODIMSE_NETNS=required, as tests/run.sh sets as root: a failure)."""
    why = netns.unavailable()
    if why is not None:
        if NETNS_REQUIRED:
            pytest.fail(f"AIODIMSE_NETNS=required, but {why}")
        warnings.warn(f"nodes on loopback addresses, not in namespaces: {why}",
                      stacklevel=1)
        yield Where("127.0.0.1", {"a": ("127.0.0.2", []), "b": ("127.0.0.3", [])})
        return
    netns.sweep()
    made = netns.Hosts(["a", "b"])
    try:
        yield Where(made.root, {name: (made.addresses[name], made.exec(name))
                                for name in ("a", "b")})
    finally:
        made.close()


@dataclass(frozen=True)
class Where:
    root: str  # the test's address: the modality, the database (relayed, netns)
    nodes: dict[str, tuple[str, list[str]]]  # node: (its address, argv prefix to run there)


async def test_a_node_killed_mid_delivery_leaves_its_report_to_the_other(
    serve: StartServe, tmp_path: Path, pg_cluster: PGCluster, hosts: Where,
) -> None:
    url = pg_cluster.new_database()
    relay = None
    node_url = url
    if hosts.root != "127.0.0.1":  # the nodes reach the database across their veth
        relay = await netns.Relay(hosts.root, ("127.0.0.1", pg_cluster.port)).start()
        node_url = url.replace(f"127.0.0.1:{pg_cluster.port}", f"{hosts.root}:{relay.port}")
    config = tmp_path / "serve.toml"
    config.write_text(f'[server]\ndatabase = "{node_url}"\n\n[commitment]\nlease = {LEASE}\n'
                      "poll_interval = 1\nsame_association = false\nretry_initial = 30\n")
    modality_port = free_port()
    peer = f"MODALITY@{hosts.root}:{modality_port}"
    first_arrived = asyncio.Event()
    acknowledged: list[tuple[str, str]] = []  # (node's AE title, Transaction UID)
    callers: set[str] = set()  # the addresses reports came from

    async def on_report(event: Event) -> tuple[int, None]:
        caller = event.assoc.requestor.ae_title
        callers.add(event.assoc.requestor.address)
        if not first_arrived.is_set():  # the first one is never answered: A dies
            first_arrived.set()
            await asyncio.sleep(3600)
        acknowledged.append((caller, str(event.event_information.TransactionUID)))
        return 0x0000, None

    modality = AE("MODALITY")
    modality.add_supported_context(STGCMT, scp_role=True)
    listener = await modality.start_server(
        (hosts.root, modality_port), evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    (host_a, wrap_a), (host_b, wrap_b) = hosts.nodes["a"], hosts.nodes["b"]
    node_b = None
    try:
        node_a = serve("--config", str(config), "--host", host_a, "-aet", "NODE_A",
                       "--peer", peer, data=tmp_path / "a", wrap=wrap_a)
        node_b = serve("--config", str(config), "--host", host_b, "-aet", "NODE_B",
                       "--peer", peer, data=tmp_path / "b", wrap=wrap_b)
        await asyncio.gather(node_a.ready(), node_b.ready())
        uid = str(generate_uid())
        assert await _commit(host_a, node_a.port, "NODE_A", uid) == 0
        await asyncio.wait_for(first_arrived.wait(), 30)
        node_a.stop(signal.SIGKILL)  # mid-delivery: its lease runs out, B takes it
        store = open_store(url)
        try:
            await wait_for_state(store, uid, timeout=LEASE + 30)
            assert acknowledged == [("NODE_B", uid)]
            await asyncio.sleep(LEASE + 0.5)  # a lease more: nothing is sent again
            assert acknowledged == [("NODE_B", uid)]
            state = await store.delivery_state("commitment", uid)
            assert state is not None and state[0] == "delivered"
        finally:
            await store.aclose()
        # the other way round, B alive: a request on B is delivered by B at once
        other = str(generate_uid())
        assert await _commit(host_b, node_b.port, "NODE_B", other) == 0
        await wait_for(lambda: ("NODE_B", other) in acknowledged, 30, "B's own report")
        if wrap_a:  # across the bridge, from each node's own namespace
            assert callers == {host_a, host_b}, callers
        assert "queue notifications unavailable" not in node_b.log()
    finally:
        if node_b is not None:  # while its peer and database (the relay) answer; in a
            await asyncio.to_thread(node_b.stop)  # thread: this loop runs the peer
        await listener.shutdown(1.0)
        if relay is not None:
            relay.close()


async def test_two_nodes_claiming_one_workitem_and_a_subscription_made_on_the_other(
    serve: StartServe, tmp_path: Path, pg_cluster: PGCluster,
) -> None:
    """A workitem made on A, RIS subscribed to it on B; A and B each asked to claim it
    at the same moment: one answers Success, the other 0xC302 (IN PROGRESS already);
    A cancels it under the winner's Transaction UID. RIS gets the initial report
    (queued on B) and both changes, in order, whichever node made them."""
    url = pg_cluster.new_database()
    inbox = Inbox()
    ris = await listen(inbox, "RIS")
    try:
        # a grace long enough for each node's GOING DOWN to reach RIS on a loaded
        # machine (half of it is given to that report)
        grace = tmp_path / "grace.toml"
        grace.write_text("[limits]\nshutdown_grace = 20\n")
        nodes = [serve("--config", str(grace), "--database", url, "--host", host, "-aet", title,
                       "--peer", f"RIS@127.0.0.1:{ris.port}", data=tmp_path / title)
                 for host, title in (("127.0.0.2", "NODE_A"), ("127.0.0.3", "NODE_B"))]
        await asyncio.gather(*(node.ready() for node in nodes))  # starting together
        ae = AE("PERFORMER")
        for uid in (UPS_PUSH, UPS_PULL, UPS_WATCH):
            ae.add_requested_context(uid)
        on_a = await ae.associate("127.0.0.2", nodes[0].port, ae_title="NODE_A")
        on_b = await ae.associate("127.0.0.3", nodes[1].port, ae_title="NODE_B")
        try:
            uid = str(generate_uid())
            status, _ = await on_a.send_n_create(workitem(), UPS_PUSH, uid)
            assert int(status.Status) == 0
            status, _ = await on_b.send_n_action(subscribe_info("RIS"), 3, UPS_PUSH, uid,
                                                 UPS_WATCH)
            assert int(status.Status) == 0
            locks = [str(generate_uid()), str(generate_uid())]
            claims = await asyncio.gather(*(_change(assoc, uid, "IN PROGRESS", lock)
                                            for assoc, lock in zip((on_a, on_b), locks,
                                                                   strict=True)))
            assert sorted(claims) == [0x0000, 0xC302], [hex(c) for c in claims]
            assert await _change(on_a, uid, "CANCELED", locks[claims.index(0)]) == 0
        finally:
            await on_a.release()
            await on_b.release()
        await inbox.wait_for(3)
        assert [(t, i, str(info.ProcedureStepState)) for t, i, info in inbox.reports] == [
            (1, uid, "SCHEDULED"), (1, uid, "IN PROGRESS"), (1, uid, "CANCELED")]
        # stopped while RIS listens (and this loop runs): each node tells it, as its
        # own SCP (AE title), that it is going down, and need not wait for that
        assert await asyncio.gather(*(asyncio.to_thread(n.stop, timeout=30)
                                     for n in nodes)) == [0, 0]
        going = inbox.of(4)
        assert sorted(str(info.SCPStatus) for _t, _i, info in going) == ["GOING DOWN"] * 2
    finally:
        ris.close()
        await ris.wait_closed()


async def _change(assoc: Association, uid: str, state: str, lock: str) -> int:
    """Change UPS State on ``assoc``: the status."""
    info = Dataset()
    info.ProcedureStepState = state
    info.TransactionUID = lock
    status, _ = await assoc.send_n_action(info, 1, UPS_PUSH, uid, UPS_PULL)
    return int(status.Status)


async def _commit(host: str, port: int, called: str, uid: str) -> int:
    """One commitment request to the node at ``host``, released at once."""
    ae = AE("MODALITY")
    ae.add_requested_context(STGCMT)
    async with ae.associate(host, port, ae_title=called) as assoc:
        status, _ = await assoc.send_n_action(_request(uid, [(CT, str(generate_uid()))]),
                                              1, STGCMT, STGCMT_INSTANCE)
    return int(status.Status)


async def wait_for_state(store: Store, uid: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state = await store.delivery_state("commitment", uid)
        if state is not None and state[0] == "delivered":
            return
        assert loop.time() < deadline, f"not delivered: {state}"
        await asyncio.sleep(0.2)


RESOURCE_LIMITATION = 0x0213
OUTAGE = "requests that need the database fail"


async def test_the_database_restarted_under_load_loses_nothing_acknowledged(
    serve: StartServe, tmp_path: Path, pg_cluster: PGCluster,
) -> None:
    """Three associations send MPPS N-CREATEs and commitment N-ACTIONs without pause
    while the database is killed (``immediate``: a crash) and later stopped
    (``fast``), each time started again. Requests meanwhile are refused with 0x0213;
    every one answered Success is in the database after, its report (commitment)
    acknowledged once; the node reconnects by itself and logs each outage once."""
    url = pg_cluster.new_database()
    config = tmp_path / "serve.toml"
    config.write_text(f'[server]\ndatabase = "{url}"\n\n[commitment]\nlease = 5\n'
                      "poll_interval = 1\nsame_association = false\nretry_initial = 0.5\n"
                      "\n[services]\nups = false\n")
    modality_port = free_port()
    acknowledged: list[str] = []

    async def on_report(event: Event) -> tuple[int, None]:
        acknowledged.append(str(event.event_information.TransactionUID))
        return 0x0000, None

    modality = AE("MODALITY")
    modality.add_supported_context(STGCMT, scp_role=True)
    listener = await modality.start_server(
        ("127.0.0.1", modality_port), evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    answers: list[tuple[str, str, int]] = []  # (what, UID, status)
    running = True

    async def client(node: ServeProcess) -> None:
        ae = AE("MODALITY")
        ae.add_requested_context(STGCMT)
        ae.add_requested_context(MPPS)
        step = Dataset()
        step.PerformedProcedureStepStatus = "IN PROGRESS"
        async with ae.associate("127.0.0.1", node.port, ae_title="NODE") as assoc:
            while running:
                uid = str(generate_uid())
                status, _ = await assoc.send_n_create(step, MPPS, uid)
                answers.append(("mpps", uid, int(status.Status)))
                uid = str(generate_uid())
                status, _ = await assoc.send_n_action(
                    _request(uid, [(CT, str(generate_uid()))]), 1, STGCMT, STGCMT_INSTANCE)
                answers.append(("commitment", uid, int(status.Status)))

    try:
        node = await serve("--config", str(config), "-aet", "NODE", "--peer",
                           f"MODALITY@127.0.0.1:{modality_port}").ready()
        clients = [asyncio.create_task(client(node)) for _ in range(3)]
        try:
            for mode in ("immediate", "fast"):
                await asyncio.sleep(0.3)
                await asyncio.to_thread(pg_cluster.pause, mode)
                await asyncio.sleep(0.3)
                await asyncio.to_thread(pg_cluster.resume)
            served = len(answers)
            await wait_for(lambda: any(s == 0 for _, _, s in answers[served:]), 15,
                           "a request served after the restarts")
        finally:
            running = False
            await asyncio.wait_for(asyncio.gather(*clients), 15)
        assert {s for _, _, s in answers} == {0, RESOURCE_LIMITATION}, answers
        stored = [(what, uid) for what, uid, s in answers if s == 0]
        store = open_store(url)
        try:
            for what, uid in stored:
                if what == "mpps":
                    assert await store.mpps_get(uid) is not None, uid
                else:
                    assert await store.commitment_state(uid) is not None, uid
            committed = {uid for what, uid in stored if what == "commitment"}
            await wait_for(lambda: committed <= set(acknowledged), 30, "every report")
            await asyncio.sleep(1.0)  # a poll more: nothing is sent again
            assert len(acknowledged) == len(set(acknowledged)), acknowledged
        finally:
            await store.aclose()
        log = node.log()
        errors = [line for line in log.splitlines() if " ERROR " in line]
        assert len(errors) == 2 and all(OUTAGE in e for e in errors), errors
        assert log.count("reachable again") == 2, log[-3000:]
    finally:
        await listener.shutdown(1.0)

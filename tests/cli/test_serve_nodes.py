"""Two ``aiodimse serve`` nodes on one PostgreSQL database, as separate hosts on two
loopback addresses (issue 23): a storage commitment accepted by node A, A killed
with SIGKILL while delivering its report, and node B delivers it, once; and UPS
across nodes: two claims of one workitem at once on A and B, one wins, and a
subscriber who subscribed on B hears of the changes made on A."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, Association, Event, evt
from aiodimse.services import STORAGE_COMMITMENT as STGCMT
from aiodimse.services import STORAGE_COMMITMENT_INSTANCE as STGCMT_INSTANCE
from aiodimse.services.ups import UPS_PULL, UPS_PUSH, UPS_WATCH
from aiodimse.store import Store, open_store

from ..services._ups import workitem
from ..services.ups_fakes import Inbox, listen, subscribe_info
from ..store.pg_cluster import PGCluster
from ._serve import CT, free_port, wait_for
from .conftest import StartServe
from .test_serve_commitment import _request

LEASE = 5.0  # s a node owns a report it is delivering


async def test_a_node_killed_mid_delivery_leaves_its_report_to_the_other(
    serve: StartServe, tmp_path: Path, pg_cluster: PGCluster,
) -> None:
    url = pg_cluster.new_database()
    config = tmp_path / "serve.toml"
    config.write_text(f'[server]\ndatabase = "{url}"\n\n[commitment]\nlease = {LEASE}\n'
                      "poll_interval = 1\nsame_association = false\nretry_initial = 30\n")
    modality_port = free_port()
    peer = f"MODALITY@127.0.0.1:{modality_port}"
    first_arrived = asyncio.Event()
    acknowledged: list[tuple[str, str]] = []  # (node's AE title, Transaction UID)

    async def on_report(event: Event) -> tuple[int, None]:
        caller = event.assoc.requestor.ae_title
        if not first_arrived.is_set():  # the first one is never answered: A dies
            first_arrived.set()
            await asyncio.sleep(3600)
        acknowledged.append((caller, str(event.event_information.TransactionUID)))
        return 0x0000, None

    modality = AE("MODALITY")
    modality.add_supported_context(STGCMT, scp_role=True)
    listener = await modality.start_server(
        ("127.0.0.1", modality_port), evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    try:
        node_a = await serve("--config", str(config), "--host", "127.0.0.2", "-aet", "NODE_A",
                             "--peer", peer, data=tmp_path / "a").ready()
        node_b = await serve("--config", str(config), "--host", "127.0.0.3", "-aet", "NODE_B",
                             "--peer", peer, data=tmp_path / "b").ready()
        uid = str(generate_uid())
        assert await _commit("127.0.0.2", node_a.port, "NODE_A", uid) == 0
        await asyncio.wait_for(first_arrived.wait(), 30)
        node_a.stop(signal.SIGKILL)  # mid-delivery: its lease runs out, B takes it
        store = open_store(url)
        try:
            await wait_for_state(store, uid, timeout=LEASE + 30)
            assert acknowledged == [("NODE_B", uid)]
            await asyncio.sleep(LEASE + 2)  # a lease more: nothing is sent again
            assert acknowledged == [("NODE_B", uid)]
            state = await store.delivery_state("commitment", uid)
            assert state is not None and state[0] == "delivered"
        finally:
            await store.aclose()
        # the other way round, B alive: a request on B is delivered by B at once
        other = str(generate_uid())
        assert await _commit("127.0.0.3", node_b.port, "NODE_B", other) == 0
        await wait_for(lambda: ("NODE_B", other) in acknowledged, 30, "B's own report")
        assert "queue notifications unavailable" not in node_b.log()
    finally:
        await listener.shutdown(1.0)


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
        nodes = [serve("--database", url, "--host", host, "-aet", title,
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
        assert await asyncio.gather(*(asyncio.to_thread(n.stop) for n in nodes)) == [0, 0]
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

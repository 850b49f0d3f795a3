"""Two ``aiodimse serve`` nodes on one PostgreSQL database, as separate hosts on two
loopback addresses (issue 23): a storage commitment accepted by node A, A killed
with SIGKILL while delivering its report, and node B delivers it, once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from pydicom.uid import generate_uid

from aiodimse import AE, Event, evt
from aiodimse.services import STORAGE_COMMITMENT as STGCMT
from aiodimse.services import STORAGE_COMMITMENT_INSTANCE as STGCMT_INSTANCE
from aiodimse.store import Store, open_store

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
                      "poll_interval = 1\nsame_association = false\nretry_initial = 30\n"
                      # (UPS workitems are not on PostgreSQL yet)
                      "\n[services]\nups = false\n")
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

"""``aiodimse serve --workers 2``: two processes on one port (SO_REUSEPORT), one database,
one SCP (a UPS subscriber told once that it goes down)."""

from __future__ import annotations

import asyncio
import os
import re
import signal

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE
from aiodimse.presentation import VERIFICATION
from aiodimse.services import MPPS
from aiodimse.services.ups import UPS_PUSH, UPS_WATCH
from aiodimse.services.ups.uids import GLOBAL_SUBSCRIPTION
from aiodimse.store import DB_FILENAME, open_store

from ..services.ups_fakes import Inbox, listen, subscribe_info
from ._serve import ServeProcess, wait_for
from .conftest import StartServe

CRASH_LOOP_EXITS = 5  # aiodimse.cli.serve.CRASH_LOOP_EXITS (documented in docs/cli.md)


async def _create(port: int, uid: str) -> int:
    ae = AE("CT1")
    ae.add_requested_context(MPPS)
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    async with ae.associate("127.0.0.1", port, ae_title="ARCHIVE") as assoc:
        status, _ = await assoc.send_n_create(ds, MPPS, uid)
    return int(status.Status)


async def test_two_workers_share_port_and_database(serve: StartServe) -> None:
    inbox = Inbox()
    ris = await listen(inbox, "RIS")
    try:
        await _two_workers(serve, ris.port, inbox)
    finally:
        ris.close()
        await ris.wait_closed()


async def _two_workers(serve: StartServe, ris_port: int, inbox: Inbox) -> None:
    srv = await serve("-aet", "ARCHIVE", "--workers", "2",
                      "--peer", f"RIS@127.0.0.1:{ris_port}").ready(count=2)
    uids = [str(generate_uid()) for _ in range(24)]
    statuses = await asyncio.wait_for(
        asyncio.gather(*(_create(srv.port, uid) for uid in uids)), 30
    )
    assert statuses == [0] * len(uids)
    # Every instance is visible from any worker: one database.
    ae = AE("CT1")
    ae.add_requested_context(MPPS)
    async with ae.associate("127.0.0.1", srv.port, ae_title="ARCHIVE") as assoc:
        for uid in uids:
            status, reply = await assoc.send_n_get(None, MPPS, uid)
            assert status.Status == 0
            assert reply is not None and reply.PerformedProcedureStepStatus == "IN PROGRESS"
    log = srv.log()
    serving = set(re.findall(r"\[(\d+)\] serving ARCHIVE", log))
    creators = set(re.findall(r"\[(\d+)\] mpps created", log))
    assert len(serving) == 2
    assert creators == serving  # the kernel spread the associations over both
    ae = AE("RIS")
    ae.add_requested_context(UPS_WATCH)
    async with ae.associate("127.0.0.1", srv.port, ae_title="ARCHIVE") as assoc:
        status, _ = await assoc.send_n_action(subscribe_info("RIS"), 3, UPS_PUSH,
                                              GLOBAL_SUBSCRIPTION, UPS_WATCH)
        assert status.Status == 0
    # SIGTERM to the supervisor stops both workers gracefully (while RIS listens): the
    # SCP goes down once, so RIS is told once, not once per worker
    assert await asyncio.to_thread(srv.stop) == 0
    assert srv.log().count("] stopped") == 2
    assert [str(info.SCPStatus) for _t, _i, info in inbox.of(4)] == ["GOING DOWN"]
    store = open_store(srv.data / DB_FILENAME)
    try:
        assert await store.count_pending() == 0  # none queued by the other worker either
    finally:
        await store.aclose()
    summaries = re.findall(r"summary associations=(\d+) .* mpps_created=(\d+)", srv.log())
    assert sum(int(created) for _assocs, created in summaries) == len(uids)


async def _echoes(port: int, count: int) -> list[int]:
    ae = AE("CT1")
    ae.add_requested_context(VERIFICATION)
    statuses = []
    for _ in range(count):
        async with ae.associate("127.0.0.1", port, ae_title="ARCHIVE") as assoc:
            statuses.append(int((await asyncio.wait_for(assoc.send_c_echo(), 10)).Status))
    return statuses


def _serving_pids(srv: ServeProcess) -> list[int]:
    return [int(pid) for pid in re.findall(r"\[(\d+)\] serving ARCHIVE", srv.log())]


async def test_a_killed_worker_is_restarted_and_the_others_keep_serving(serve: StartServe
                                                                        ) -> None:
    srv = await serve("-aet", "ARCHIVE", "--workers", "2").ready(count=2)
    first, _second = _serving_pids(srv)
    os.kill(first, signal.SIGKILL)
    await wait_for(lambda: f"(pid {first}) was killed by SIGKILL" in srv.log(), 10,
                   "the supervisor to see the worker die")
    assert not srv.exited()
    assert await _echoes(srv.port, 10) == [0] * 10  # the other worker serves meanwhile
    await wait_for(lambda: len(_serving_pids(srv)) == 3, 20, "the worker to be restarted")
    assert first not in _serving_pids(srv)[2:]
    assert await _echoes(srv.port, 10) == [0] * 10
    assert srv.stop() == 0
    assert srv.log().count("] stopped") == 2  # the survivor and the new one


async def test_a_crash_loop_stops_the_supervisor(serve: StartServe) -> None:
    srv = await serve("-aet", "ARCHIVE", "--workers", "2").ready(count=2)
    for deaths in range(CRASH_LOOP_EXITS):
        pid = _serving_pids(srv)[-1]
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda pid=pid: f"(pid {pid}) was killed by SIGKILL" in srv.log(),
                       10, "the supervisor to see the worker die")
        if deaths < CRASH_LOOP_EXITS - 1:
            await wait_for(lambda n=deaths: len(_serving_pids(srv)) == 3 + n, 30,
                           "the worker to be restarted")
    await wait_for(srv.exited, 30, "the supervisor to give up")
    assert srv.stop() == 1
    log = srv.log()
    assert f"{CRASH_LOOP_EXITS} worker exits within" in log and "crash loop" in log
    assert log.count("] stopped") == 1  # the worker never killed stopped gracefully

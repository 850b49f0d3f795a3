"""``aiodimse serve --workers 2``: two processes on one port (SO_REUSEPORT), one database."""

from __future__ import annotations

import asyncio
import re

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE
from aiodimse.services import MPPS

from .conftest import StartServe


async def _create(port: int, uid: str) -> int:
    ae = AE("CT1")
    ae.add_requested_context(MPPS)
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    async with ae.associate("127.0.0.1", port, ae_title="ARCHIVE") as assoc:
        status, _ = await assoc.send_n_create(ds, MPPS, uid)
    return int(status.Status)


async def test_two_workers_share_port_and_database(serve: StartServe) -> None:
    srv = await serve("-aet", "ARCHIVE", "--workers", "2").ready(count=2)
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
    assert srv.stop() == 0  # SIGTERM to the supervisor stops both workers gracefully
    assert srv.log().count("] stopped") == 2
    summaries = re.findall(r"summary associations=(\d+) .* mpps_created=(\d+)", srv.log())
    assert sum(int(created) for _assocs, created in summaries) == len(uids)

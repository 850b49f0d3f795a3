"""Graceful stop: in-flight requests finish, new requests and associations are refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiodimse import AssociationError, Event, evt

from ._helpers import (
    MPPS,
    STGCMT,
    STGCMT_INSTANCE,
    bounded,
    ds_of,
    make_scp_ae,
    make_scu_ae,
)


async def test_requests_after_shutdown_began_are_refused_in_flight_ones_finish() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()
    created: list[str] = []

    async def slow_action(event: Event) -> tuple[int, None]:
        entered.set()
        await release.wait()
        return 0x0000, None

    async def on_create(event: Event) -> tuple[int, Any]:
        created.append(event.request.AffectedSOPInstanceUID)
        return 0x0000, None

    scp = make_scp_ae()
    server = await bounded(scp.start_server(("127.0.0.1", 0), evt_handlers=[
        (evt.EVT_N_ACTION, slow_action), (evt.EVT_N_CREATE, on_create)]))
    port = server.port
    busy = await bounded(make_scu_ae().associate("127.0.0.1", port))
    idle = await bounded(make_scu_ae().associate("127.0.0.1", port))
    in_flight = asyncio.ensure_future(busy.send_n_action(ds_of(PatientID="1"), 1, STGCMT,
                                                         STGCMT_INSTANCE))
    await bounded(entered.wait())
    stopping = asyncio.ensure_future(server.shutdown(grace=5.0))
    await asyncio.sleep(0.1)
    assert not stopping.done()  # waiting for the request in flight
    assert (await bounded(idle.send_c_echo())).Status == 0x0213
    status, _ = await bounded(idle.send_n_create(None, MPPS, "1.2.3.4"))
    assert status.Status == 0x0213
    assert created == []  # refused without running the handler
    with pytest.raises(AssociationError, match="cannot connect"):  # not listening
        await bounded(make_scu_ae().associate("127.0.0.1", port))
    release.set()
    status, _ = await bounded(in_flight)
    assert status.Status == 0x0000  # the request in flight was finished
    await bounded(stopping)
    await bounded(busy.wait_closed())
    await bounded(idle.wait_closed())
    assert busy.is_aborted and idle.is_aborted
    assert server.connection_count == 0

"""DCMTK as the peer: echoscu against our SCP, our C-ECHO against storescp.

pynetdicom installs console scripts with the same names, so DCMTK's programs are
found by ``dcmtk()`` and called by their full path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from aiodimse import AssociationError, Event, evt

from ..aio._helpers import VERIFICATION, bounded, make_scp_ae, make_scu_ae, serving
from ..dcmtk_tools import dcmtk, storescp
from ..dcmtk_tools import run_program as run

ECHOSCU = dcmtk("echoscu")
STORESCP = dcmtk("storescp")


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[tuple[int, list[Event], list[str]]]:
    echoes: list[Event] = []
    ends: list[str] = []

    async def on_echo(event: Event) -> int:
        echoes.append(event)
        return 0x0000

    async def on_end(event: Event) -> None:
        ends.append(event.name)

    handlers = [
        (evt.EVT_C_ECHO, on_echo),
        (evt.EVT_RELEASED, on_end),
        (evt.EVT_ABORTED, on_end),
    ]
    async with serving(handlers, ae=make_scp_ae(classes=[VERIFICATION])) as server:
        yield server.port, echoes, ends


async def _wait_for(ends: list[str], count: int) -> None:
    for _ in range(100):
        if len(ends) >= count:
            return
        await asyncio.sleep(0.02)


async def test_echoscu_plain() -> None:
    async with echo_server() as (port, echoes, ends):
        code, out = await run(ECHOSCU, "-aet", "DCMTK_SCU", "-aec", "TEST_SCP",
                              "127.0.0.1", str(port))
        assert code == 0, out
        await _wait_for(ends, 1)
    assert len(echoes) == 1
    assert echoes[0].assoc.requestor.ae_title == "DCMTK_SCU"
    assert ends == ["EVT_RELEASED"]


async def test_echoscu_small_pdu() -> None:
    async with echo_server() as (port, echoes, _ends):
        code, out = await run(ECHOSCU, "-pdu", "4096", "127.0.0.1", str(port))
        assert code == 0, out
    assert len(echoes) == 1
    assert echoes[0].assoc.requestor.maximum_length == 4096


async def test_echoscu_repeat() -> None:
    async with echo_server() as (port, echoes, ends):
        code, out = await run(ECHOSCU, "--repeat", "5", "127.0.0.1", str(port))
        assert code == 0, out
        await _wait_for(ends, 1)
    # five C-ECHOs on one association, each with its own Message ID
    assert len(echoes) == 5
    assert len({e.message_id for e in echoes}) == 5
    assert len({id(e.assoc) for e in echoes}) == 1
    assert ends == ["EVT_RELEASED"]


async def test_echoscu_abort_leaves_server_healthy() -> None:
    async with echo_server() as (port, echoes, ends):
        code, out = await run(ECHOSCU, "--abort", "127.0.0.1", str(port))
        assert code == 0, out
        await _wait_for(ends, 1)
        assert ends == ["EVT_ABORTED"]
        # still serving: DCMTK again, and our own SCU
        code, out = await run(ECHOSCU, "127.0.0.1", str(port))
        assert code == 0, out
        async with make_scu_ae(classes=[VERIFICATION]).associate("127.0.0.1", port) as assoc:
            assert (await bounded(assoc.send_c_echo())).Status == 0
    assert len(echoes) == 3


async def test_echoscu_rejected_when_called_title_wrong() -> None:
    scp = make_scp_ae("RIGHT", classes=[VERIFICATION])
    scp.require_called_aet = True
    async with serving(ae=scp) as server:
        code, out = await run(ECHOSCU, "-aec", "WRONG", "127.0.0.1", str(server.port))
        assert code != 0
        assert "reject" in out.lower()
        code, out = await run(ECHOSCU, "-aec", "RIGHT", "127.0.0.1", str(server.port))
        assert code == 0, out


async def test_our_echo_against_storescp() -> None:
    async with storescp("-aet", "STORESCP") as port:
        scu = make_scu_ae("OUR_SCU", classes=[VERIFICATION])
        async with scu.associate("127.0.0.1", port, ae_title="STORESCP") as assoc:
            assert assoc.is_established
            assert assoc.acceptor.implementation_class_uid.startswith("1.2.276.0.7230010")
            for _ in range(3):
                status = await bounded(assoc.send_c_echo())
                assert status.Status == 0x0000
        assert assoc.is_released
        # storescp rejects a context it does not know; we report it
        scu2 = make_scu_ae("OUR_SCU", classes=[VERIFICATION, "1.2.840.10008.1.20.1"])
        async with scu2.associate("127.0.0.1", port, ae_title="STORESCP") as assoc2:
            assert [c.abstract_syntax for c in assoc2.accepted_contexts] == [VERIFICATION]
            assert [uid for _, uid, _ in assoc2.rejected_contexts] == ["1.2.840.10008.1.20.1"]
            assert (await bounded(assoc2.send_c_echo())).Status == 0


async def test_our_echo_against_storescp_aborted() -> None:
    async with storescp("-aet", "STORESCP") as port:
        scu = make_scu_ae(classes=[VERIFICATION])
        assoc = await bounded(scu.associate("127.0.0.1", port, ae_title="STORESCP"))
        assoc.abort()
        await bounded(assoc.wait_closed())
        assert assoc.is_aborted
        with pytest.raises(AssociationError):
            await bounded(assoc.send_c_echo())
        async with scu.associate("127.0.0.1", port, ae_title="STORESCP") as again:
            assert (await bounded(again.send_c_echo())).Status == 0

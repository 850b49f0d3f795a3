"""Binding handlers after start (server.bind / assoc.bind) and the DEBUG summary."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from aiodimse import evt

from ._helpers import STGCMT, STGCMT_INSTANCE, bounded, make_scu_ae, serving


async def _ok(event: Any) -> tuple[int, None]:
    return 0x0000, None


async def _warn(event: Any) -> tuple[int, None]:
    return 0x0001, None


async def test_server_bind_reaches_new_associations_and_unbind_removes() -> None:
    async with serving() as server:
        scu = make_scu_ae()
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            status, _ = await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
            assert status.Status == 0x0110  # nothing bound yet
        server.bind(evt.EVT_N_ACTION, _ok)
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            status, _ = await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
            assert status.Status == 0x0000
        server.unbind(evt.EVT_N_ACTION, _ok)
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            status, _ = await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
            assert status.Status == 0x0110


async def test_notification_bound_after_start_is_delivered_and_unbound_is_not() -> None:
    seen: list[str] = []

    async def on_released(event: Any) -> None:
        seen.append(event.name)

    async with serving() as server:
        scu = make_scu_ae()
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP"):
            pass
        assert seen == []
        server.bind(evt.EVT_RELEASED, on_released)
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            pass
        await bounded(assoc.wait_closed())
        for _ in range(100):  # the notification runs as its own task
            if seen:
                break
            await asyncio.sleep(0.01)
        assert seen == ["EVT_RELEASED"]
        server.unbind(evt.EVT_RELEASED, on_released)
        assert not server.handlers.notifies
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP"):
            pass
        await asyncio.sleep(0.1)
        assert seen == ["EVT_RELEASED"]


async def test_association_bind_is_local_to_that_association() -> None:
    bound_on: list[Any] = []

    async def on_established(event: Any) -> None:
        if not bound_on:  # the first association only gets its own handler
            event.assoc.bind(evt.EVT_N_ACTION, _warn)
            bound_on.append(event.assoc)

    async with serving([(evt.EVT_N_ACTION, _ok), (evt.EVT_ESTABLISHED, on_established)]) as srv:
        scu = make_scu_ae()
        async with scu.associate("127.0.0.1", srv.port, ae_title="TEST_SCP") as first:
            status, _ = await bounded(first.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
            assert status.Status == 0x0001
            assert bound_on[0].get_handlers(evt.EVT_N_ACTION) == [_warn]
            async with scu.associate("127.0.0.1", srv.port, ae_title="TEST_SCP") as second:
                status, _ = await bounded(
                    second.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE)
                )
                assert status.Status == 0x0000  # the server's handler, untouched


async def test_debug_log_summarises_each_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aiodimse.association")
    async with serving([(evt.EVT_N_ACTION, _ok)]) as server:
        scu = make_scu_ae()
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
    lines = [r.getMessage() for r in caplog.records if r.name == "aiodimse.association"]
    assert any(m.startswith("sent NActionRQ id=1 context=") for m in lines), lines
    assert any(m.startswith("received NActionRQ id=1") for m in lines), lines
    assert any("received NActionRSP id=1" in m and "status=0x0000" in m for m in lines), lines


async def test_nothing_is_logged_at_info_in_steady_state(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aiodimse")
    async with serving([(evt.EVT_N_ACTION, _ok)]) as server:
        scu = make_scu_ae()
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            caplog.clear()
            for _ in range(20):
                await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
            assert [r for r in caplog.records if r.name.startswith("aiodimse")] == []

"""The association's set-up and end (establishment.py, lifecycle.py): the waits made
only when something waits, notifications only when one is bound, the upper layer's
events each dispatched by type."""

from __future__ import annotations

import asyncio
import dataclasses
import typing
from typing import Any

import pytest

from aiodimse import Association, AssociationRejectedError, Event, establishment, evt, lifecycle
from aiodimse import association as association_module
from aiodimse.ul import events as ul_events

from ._helpers import bounded, make_scu_ae, serving, session


async def test_every_wait_returns_at_once_once_the_association_has_ended() -> None:
    ended: list[Association] = []
    async with session() as assoc:
        await bounded(assoc.send_c_echo())
    # released: each wait answers from what happened, without waiting
    assert not assoc.is_alive and assoc.is_released
    await bounded(assoc.wait_closed(), 1)
    await bounded(assoc.release(), 1)
    await bounded(assoc.wait_established(), 1)  # it was accepted
    await bounded(assoc.wait_idle(), 1)
    assoc.on_end(ended.append)  # registered after the end: called all the same
    for _ in range(3):
        await asyncio.sleep(0)
    assert ended == [assoc]


async def test_waiting_for_the_end_of_a_server_association_is_woken_by_it() -> None:
    server_side: list[Association] = []
    ended: list[Association] = []

    async def on_established(event: Event) -> None:
        server_side.append(event.assoc)
        event.assoc.on_end(ended.append)

    async with serving([(evt.EVT_ESTABLISHED, on_established)]) as server:
        assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
        for _ in range(50):
            if server_side:
                break
            await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(server_side[0].wait_closed())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await bounded(assoc.release())
        await bounded(waiting)
        await bounded(server_side[0].wait_established())  # accepted, long ago
        for _ in range(50):
            if ended:
                break
            await asyncio.sleep(0.01)
        assert ended == server_side


async def test_a_rejected_set_up_fails_every_wait_for_it() -> None:
    rejected: list[Association] = []

    async def on_rejected(event: Event) -> None:
        rejected.append(event.assoc)

    async with serving([(evt.EVT_REJECTED, on_rejected)],
                       configure=lambda ae: setattr(ae, "require_called_aet", True)) as server:
        with pytest.raises(AssociationRejectedError):
            await bounded(make_scu_ae().associate("127.0.0.1", server.port,
                                                   ae_title="SOMEONE_ELSE"))
        for _ in range(50):
            if rejected:
                break
            await asyncio.sleep(0.01)
        theirs = rejected[0]
        for _ in range(2):  # the same answer each time
            with pytest.raises(AssociationRejectedError) as caught:
                await bounded(theirs.wait_established(), 1)
            assert caught.value.reason == 7  # called AE title not recognised


async def test_nothing_is_notified_when_no_notification_handler_is_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []

    def counting(assoc: Any, event_type: Any) -> None:
        calls.append(event_type)

    for module in (association_module, establishment, lifecycle):
        monkeypatch.setattr(module, "notify", counting)

    async def on_action(event: Event) -> tuple[int, None]:
        return 0x0000, None

    async with session([(evt.EVT_N_ACTION, on_action)]) as assoc:
        await bounded(assoc.send_c_echo())
    assert calls == []  # neither side has one: six calls per association saved

    async def on_released(event: Event) -> None:
        pass

    async with session([(evt.EVT_RELEASED, on_released)]):
        pass
    assert evt.EVT_RELEASED in calls and evt.EVT_CONN_OPEN in calls  # one bound: all asked


def test_every_upper_layer_event_but_the_close_has_its_handler() -> None:
    table = Association._ON_UL_EVENT
    kinds = set(typing.get_args(ul_events.ULEvent))
    assert all(dataclasses.is_dataclass(kind) for kind in kinds)
    assert set(table) == kinds - {ul_events.CloseTransport}  # the protocol closes
    assert all(callable(on_event) for on_event in table.values())

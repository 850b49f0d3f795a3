"""Concurrency: N-EVENT-REPORT during an N-ACTION, the async operations window."""

from __future__ import annotations

import asyncio
from typing import Any

from pydicom.dataset import Dataset

from aiodimse import Event, evt

from ._helpers import STGCMT, STGCMT_INSTANCE, bounded, ds_of, make_scp_ae, make_scu_ae, session


async def test_event_report_on_same_association_arrives_before_action_response() -> None:
    order: list[str] = []
    reports: list[tuple[int, Dataset]] = []

    async def scp_action(event: Event) -> tuple[int, None]:
        transaction = event.action_information.TransactionUID
        status, reply = await event.assoc.send_n_event_report(
            ds_of(TransactionUID=transaction), 1, STGCMT, STGCMT_INSTANCE
        )
        order.append(f"report answered 0x{int(status.Status):04X}")
        assert reply is not None
        assert reply.PatientID == "SCU-REPLY"
        return 0x0000, None

    async def scu_report(event: Event) -> tuple[int, Dataset]:
        reports.append((event.event_type, event.event_information))
        order.append("report received")
        assert event.assoc.is_requestor
        return 0x0000, ds_of(PatientID="SCU-REPLY")

    async with session(
        [(evt.EVT_N_ACTION, scp_action)], evt_handlers=[(evt.EVT_N_EVENT_REPORT, scu_report)]
    ) as assoc:
        status, _ = await bounded(
            assoc.send_n_action(ds_of(TransactionUID="1.2.3.4.5"), 1, STGCMT, STGCMT_INSTANCE)
        )
        order.append("action response")
    assert status.Status == 0x0000
    assert order == ["report received", "report answered 0x0000", "action response"]
    assert reports[0][0] == 1
    assert reports[0][1].TransactionUID == "1.2.3.4.5"


async def test_event_report_after_action_response_on_same_association() -> None:
    """The SCP replies first, then reports while the association is still open."""
    got = asyncio.get_running_loop().create_future()
    background: list[asyncio.Task[Any]] = []

    async def later(event: Event) -> None:
        await asyncio.sleep(0.05)
        await event.assoc.send_n_event_report(
            ds_of(TransactionUID="9.8.7"), 1, STGCMT, STGCMT_INSTANCE
        )

    async def scp_action(event: Event) -> tuple[int, None]:
        background.append(asyncio.ensure_future(later(event)))
        return 0x0000, None

    async def scu_report(event: Event) -> tuple[int, None]:
        got.set_result(event.event_information.TransactionUID)
        return 0x0000, None

    async with session(
        [(evt.EVT_N_ACTION, scp_action)], evt_handlers=[(evt.EVT_N_EVENT_REPORT, scu_report)]
    ) as assoc:
        status, _ = await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
        assert status.Status == 0
        assert await bounded(got) == "9.8.7"
        await bounded(asyncio.gather(*background))


async def _window_run(
    scu_window: tuple[int, int] | None, scp_window: tuple[int, int], n: int, delay: float
) -> tuple[int, list[tuple[Dataset, Dataset | None]], float]:
    running = 0
    peak = 0

    async def on_action(event: Event) -> tuple[int, Dataset]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(delay)
        finally:
            running -= 1
        return 0x0000, ds_of(PatientID=str(event.action_type))

    scp = make_scp_ae()
    scp.maximum_async_ops = scp_window
    scu = make_scu_ae()
    scu.async_ops_window = scu_window
    loop = asyncio.get_running_loop()
    async with session([(evt.EVT_N_ACTION, on_action)], scu=scu, scp=scp) as assoc:
        start = loop.time()
        results = await bounded(
            asyncio.gather(
                *(assoc.send_n_action(None, i, STGCMT, STGCMT_INSTANCE) for i in range(1, n + 1))
            )
        )
        elapsed = loop.time() - start
    return peak, list(results), elapsed


async def test_async_ops_window_runs_handlers_concurrently() -> None:
    peak, results, elapsed = await _window_run((8, 8), (8, 8), 8, 0.3)
    assert peak == 8
    for i, (status, reply) in enumerate(results, start=1):
        assert status.Status == 0x0000
        assert status.ActionTypeID == i  # each response matched to its own request
        assert reply is not None
        assert reply.PatientID == str(i)
    assert elapsed < 8 * 0.3


async def test_async_ops_window_limits_outstanding_requests() -> None:
    """16 requests through a window of 4: never more than 4 handlers at once."""
    peak, results, _ = await _window_run((4, 4), (8, 8), 16, 0.05)
    assert peak == 4
    assert [int(s.ActionTypeID) for s, _ in results] == list(range(1, 17))
    assert all(r is not None and r.PatientID == str(i) for i, (_, r) in enumerate(results, 1))


async def test_default_window_runs_one_at_a_time() -> None:
    peak, results, elapsed = await _window_run(None, (8, 8), 4, 0.1)
    assert peak == 1
    assert [int(s.ActionTypeID) for s, _ in results] == [1, 2, 3, 4]
    assert elapsed >= 4 * 0.1 * 0.9


async def test_scp_window_one_refuses_concurrency_even_if_scu_asks() -> None:
    peak, results, _ = await _window_run((8, 8), (1, 1), 4, 0.05)
    assert peak == 1
    assert all(s.Status == 0 for s, _ in results)

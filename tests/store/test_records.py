"""Commitment transactions, MPPS instances and quotas, the same on every backend."""

from __future__ import annotations

import asyncio
import json

import pytest

from aiodimse.store import Allowance, MPPSRow, QuotaExceeded

from ._records import CT, commitment, mpps
from .conftest import OpenStore


async def test_a_commitment_and_its_report_are_written_together(stores: OpenStore) -> None:
    store = stores()
    assert await store.commitment_state("1.1") is None
    assert await store.add_commitment(*commitment("1.1"))
    assert await store.commitment_state("1.1") == ("pending", 0, None)
    assert await store.delivery_state("commitment", "1.1") == ("pending", 0, None)
    assert not await store.add_commitment(*commitment("1.1", now=200.0))  # known
    assert await store.count_pending() == 1
    # leased at once to its owner: nobody else takes it before the lease ends
    assert await store.add_commitment(*commitment("1.2"), owner="A", lease_until=150.0)
    assert [d.key for d in await stores().claim_due("B", 120.0, 60.0, 10)] == ["1.1"]
    (taken,) = await store.claim_due("C", 151.0, 60.0, 10)  # B holds 1.1 till 180
    assert (taken.key, json.loads(taken.payload)) == ("1.2", [[CT, "1.2.1"]])


async def test_a_commitment_whose_report_key_is_queued_writes_nothing(
    stores: OpenStore,
) -> None:
    store = stores()
    _, report = commitment("1.1")
    assert await store.enqueue(report)  # queued without its transaction
    for allowance in (None, Allowance(calling_aet="CT1", service="commitment",
                                      max_bytes=10_000, window=60.0)):
        assert not await store.add_commitment(*commitment("1.1"), allowance=allowance)
        assert await store.commitment_state("1.1") is None
    assert await store.count_pending() == 1


async def test_a_commitment_past_its_allowance_writes_nothing(stores: OpenStore) -> None:
    store = stores()
    c, report = commitment("1.1")
    need = len(report.payload) + len(c.transaction_uid)
    allowance = Allowance(calling_aet="CT1", service="commitment", max_bytes=need * 2,
                          window=60.0)
    assert await store.add_commitment(c, report, allowance=allowance)
    assert not await store.add_commitment(c, report, allowance=allowance)  # known: free
    assert await store.add_commitment(*commitment("1.2"), allowance=allowance)
    with pytest.raises(QuotaExceeded) as caught:
        await store.add_commitment(*commitment("1.3"), allowance=allowance)
    assert caught.value.allowance is allowance
    assert await store.commitment_state("1.3") is None and await store.count_pending() == 2
    # a new window: the count starts again (on another worker too)
    assert await stores().add_commitment(*commitment("1.3", now=161.0), allowance=allowance)


async def test_mpps_create_get_and_update(stores: OpenStore) -> None:
    store = stores()
    assert await store.mpps_get("5.1") is None
    assert await store.mpps_create(mpps("5.1"), 1.0)
    assert not await store.mpps_create(mpps("5.1", "COMPLETED"), 2.0)
    assert await stores().mpps_get("5.1") == mpps("5.1")

    def complete(row: MPPSRow | None) -> MPPSRow | str:
        if row is None or row.status != "IN PROGRESS":
            return "refused"
        return MPPSRow(sop_instance_uid=row.sop_instance_uid, status="COMPLETED",
                       dataset=row.dataset, calling_aet=row.calling_aet)

    assert await store.mpps_update("5.1", complete, 3.0) == mpps("5.1", "COMPLETED")
    assert await store.mpps_update("5.1", complete, 4.0) == "refused"  # left as it was
    assert await store.mpps_update("9.9", complete, 4.0) == "refused"
    assert await store.mpps_get("5.1") == mpps("5.1", "COMPLETED")


async def test_mpps_updates_on_two_workers_are_serialized(stores: OpenStore) -> None:
    """Read-change-write in one transaction: concurrent changes never lose one, and
    each charged write is charged once (a compare-and-set that lost, nothing)."""
    a, b = stores(), stores()
    assert await a.mpps_create(MPPSRow(sop_instance_uid="5.2", status="IN PROGRESS",
                                       dataset="0", calling_aet=None), 1.0)

    def bump(row: MPPSRow | None) -> MPPSRow:
        assert row is not None
        return MPPSRow(sop_instance_uid=row.sop_instance_uid, status=row.status,
                       dataset=str(int(row.dataset) + 1), calling_aet=None)

    await asyncio.gather(*(s.mpps_update("5.2", bump, 2.0) for s in [a, b] * 10))
    row = await a.mpps_get("5.2")
    assert row is not None and row.dataset == "20"
    # "21" ... "40": 40 bytes, exactly the allowance
    allowance = Allowance(calling_aet="CT1", service="mpps", max_bytes=40, window=60.0)
    await asyncio.gather(*(s.mpps_update("5.2", bump, 3.0, allowance) for s in [a, b] * 10))
    with pytest.raises(QuotaExceeded):
        await a.mpps_update("5.2", bump, 4.0, allowance)
    row = await b.mpps_get("5.2")
    assert row is not None and row.dataset == "40"


async def test_mpps_writes_are_charged_to_the_allowance(stores: OpenStore) -> None:
    store = stores()
    allowance = Allowance(calling_aet="CT1", service="mpps", max_bytes=60, window=10.0)
    assert await store.mpps_create(mpps("5.1", size=10), 1.0, allowance)  # 19 bytes
    with pytest.raises(QuotaExceeded):
        await store.mpps_create(mpps("5.2", size=40), 1.0, allowance)
    assert await store.mpps_get("5.2") is None
    assert not await store.mpps_create(mpps("5.1", size=10), 1.0, allowance)  # known
    grown = mpps("5.1", size=30)
    assert await store.mpps_update("5.1", lambda row: grown, 2.0, allowance) == grown
    with pytest.raises(QuotaExceeded):
        await store.mpps_update("5.1", lambda row: mpps("5.1", size=5), 3.0, allowance)
    assert await store.mpps_get("5.1") == grown  # not changed
    # another AE has its own count; a finished window is dropped
    other = Allowance(calling_aet="MR1", service="mpps", max_bytes=60, window=10.0)
    assert await store.mpps_create(mpps("5.3", size=40), 20.0, other)
    assert await store.mpps_create(mpps("5.4", size=40), 20.0, allowance)

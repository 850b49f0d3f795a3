"""The delivery queue, the same on every backend: leases between workers (or
nodes), their expiry and renewal, the order within a group, restart semantics, and
claims racing from two stores (each item delivered once)."""

from __future__ import annotations

import asyncio
import json

from ._records import CT, commitment, event
from .conftest import OpenStore


async def test_leases_between_workers(stores: OpenStore) -> None:
    a, b = stores(), stores()
    assert await a.add_commitment(*commitment("1.1"), owner="A", lease_until=160.0)
    assert not await b.add_commitment(*commitment("1.1"), owner="B", lease_until=160.0)
    assert await b.claim_due("B", now=150.0, lease=60.0, limit=10) == []  # A holds it
    assert await b.next_due() == 160.0  # when A's lease runs out
    (mine,) = await b.claim_due("B", now=170.0, lease=60.0, limit=10)  # A's ran out
    assert (mine.kind, mine.key, mine.destination) == ("commitment", "1.1", "CT1")
    assert json.loads(mine.payload) == [[CT, "1.1.1"]]
    assert await a.claim_due("A", now=171.0, lease=60.0, limit=10) == []
    await b.renew_leases("B", [mine.id], until=400.0)
    await a.renew_leases("A", [mine.id], until=100.0)  # not A's: no change
    assert await a.claim_due("A", now=300.0, lease=60.0, limit=10) == []
    again = await b.claim_due("B", now=300.0, lease=60.0, limit=10)  # its own, again
    assert [d.id for d in again] == [mine.id]
    await b.reschedule(mine.id, next_attempt=500.0, error="refused")
    assert await a.commitment_state("1.1") == ("pending", 1, "refused")
    assert await a.next_due() == 500.0
    assert await a.reset_for_start(now=200.0) == 1  # a fresh start: due at once
    assert await a.next_due() == 200.0
    await a.mark_delivered(mine.id, {"event_type": 1}, now=201.0)
    assert await b.commitment_state("1.1") == ("delivered", 2, "refused")
    assert await b.delivery_state("commitment", "1.1") == ("delivered", 2, "refused")
    assert await b.delivery_state("commitment", "9.9") is None
    assert await b.next_due() is None and await b.count_pending() == 0
    assert await a.claim_due("A", now=900.0, lease=60.0, limit=10) == []


async def test_released_and_expired_items(stores: OpenStore) -> None:
    store = stores()
    for key in ("k1", "k2", "k3"):
        assert await store.enqueue(event(key, ordering=None))
    taken = await store.claim_due("A", 100.0, 60.0, 10)
    assert [d.key for d in taken] == ["k1", "k2", "k3"]
    await store.release_leases("A", [taken[0].id])
    (back,) = await store.claim_due("B", 100.0, 60.0, 10)
    assert back.key == "k1" and back.attempts == 0  # no attempt counted
    await store.release_leases("A")
    assert [d.key for d in await store.claim_due("C", 100.0, 60.0, 10)] == ["k2", "k3"]
    await store.expire(back.id, "deadline passed")
    assert await store.delivery_state("ups", "k1") == ("expired", 1, "deadline passed")
    assert await store.count_pending() == 2
    await store.reschedule(taken[1].id, 900.0, "refused")
    await store.release_leases("C")
    assert await store.next_due() == 100.0  # k3
    assert await store.reset_for_start(100.0) == 2  # k2 is due now too
    assert [d.key for d in await store.claim_due("D", 100.0, 60.0, 10)] == ["k2", "k3"]


async def test_a_start_frees_a_dead_workers_leases_on_sqlite_only(store_url: str,
                                                                  stores: OpenStore) -> None:
    """SQLite's workers are one machine's, all started together: a start takes what
    any held. PostgreSQL's nodes start one by one while others run: a start leaves
    their leases, which run out by themselves if their node died."""
    a, b = stores(), stores()
    assert await a.enqueue(event("k1", ordering=None), owner="A", lease_until=500.0)
    assert await b.reset_for_start(100.0) == 1
    got = [d.key for d in await b.claim_due("B", 100.0, 60.0, 10)]
    assert got == ([] if store_url.startswith("postgresql://") else ["k1"])
    assert [d.key for d in await b.claim_due("B", 500.0, 60.0, 10)] == ["k1"]


async def test_claims_are_bounded_per_destination_and_in_all(stores: OpenStore) -> None:
    store = stores()
    for dest in ("RIS1", "RIS2", "RIS3"):
        for i in range(3):
            assert await store.enqueue(event(f"{dest}-{i}", dest, ordering=None))
    got = await store.claim_due("A", 100.0, 60.0, 5, per_destination=2, max_destinations=2)
    assert [d.key for d in got] == ["RIS1-0", "RIS1-1", "RIS2-0", "RIS2-1"]
    got = await store.claim_due("A", 100.0, 60.0, 10, destination="RIS3",
                                held={d.id for d in got})
    assert [d.key for d in got] == ["RIS3-0", "RIS3-1", "RIS3-2"]
    await store.release_leases("A")
    got = await store.claim_due("A", 100.0, 60.0, 4, skip_destinations={"RIS1"})
    assert [d.key for d in got] == ["RIS2-0", "RIS2-1", "RIS2-2", "RIS3-0"]


async def test_ordered_items_are_claimed_in_order_and_held_back_by_a_failure(
    stores: OpenStore,
) -> None:
    store = stores()
    for key in ("e1", "e2", "e3"):
        assert await store.enqueue(event(key))
    assert await store.enqueue(event("other", ordering="wi-2"))
    assert await store.enqueue(event("free", ordering=None))
    assert not await store.enqueue(event("e1"))  # (kind, key) is unique
    # a limit of 2 per destination: the group's head and the next, never a later one alone
    first = await store.claim_due("A", 100.0, 60.0, 10, per_destination=2)
    assert [d.key for d in first] == ["e1", "e2"]
    # while e1 and e2 are held, e3 waits even though it is due and free
    rest = await store.claim_due("A", 100.0, 60.0, 10, held={d.id for d in first})
    assert [d.key for d in rest] == ["other", "free"]  # not e3
    await store.release_leases("A")
    # e1 fails and is retried later: e2 and e3 wait for it; other groups do not
    await store.reschedule(first[0].id, next_attempt=300.0, error="refused")
    now = await store.claim_due("B", 200.0, 60.0, 10)
    assert [d.key for d in now] == ["other", "free"]
    await store.release_leases("B")
    later = await store.claim_due("B", 300.0, 60.0, 10)  # the group where it was due
    assert [d.key for d in later] == ["e1", "e2", "e3", "other", "free"]
    await store.release_leases("B", [d.id for d in later[1:]])
    assert [d.key for d in await store.claim_due("C", 300.0, 60.0, 10)] == [
        "other", "free"]  # e1 is B's still, and e2 and e3 wait for it
    # an expired head lets the rest go
    await store.expire(later[0].id, "deadline")
    await store.release_leases("C")
    after = await store.claim_due("C", 300.0, 60.0, 10, destination="RIS")
    assert [d.key for d in after] == ["e2", "e3", "other", "free"]


async def test_two_stores_claiming_at_once_take_each_item_once(stores: OpenStore) -> None:
    """Claims racing from two stores (two pools, as two nodes), round after round:
    every item is taken by exactly one, also in ordered groups, and all are taken."""
    a, b = stores(), stores()
    keys = []
    for i in range(60):
        ordering = None if i % 3 else f"g{i % 4}"
        keys.append(f"k{i}")
        assert await a.enqueue(event(f"k{i}", f"RIS{i % 5}", ordering=ordering))
    taken: dict[str, list[str]] = {"A": [], "B": []}
    for _ in range(60):
        got = await asyncio.gather(a.claim_due("A", 100.0, 60.0, 4, per_destination=2),
                                   b.claim_due("B", 100.0, 60.0, 4, per_destination=2))
        if not got[0] and not got[1]:
            break
        for owner, items in zip("AB", got, strict=True):
            taken[owner] += [item.key for item in items]
        await asyncio.gather(*(a.mark_delivered(item.id, None, 101.0)
                               for items in got for item in items))
    assert sorted(taken["A"] + taken["B"]) == sorted(keys), "each item taken exactly once"
    assert taken["A"] and taken["B"], taken  # both took part
    assert await b.count_pending() == 0


async def test_watch_and_unwatch(stores: OpenStore) -> None:
    """A watcher may be woken (PostgreSQL: by another store's enqueue); unwatching
    stops it. The wake is a hint: claims stay correct without it."""
    a = stores()
    woken = asyncio.Event()
    await a.watch(woken.set)
    await a.unwatch(woken.set)
    await a.unwatch(woken.set)  # twice: nothing to stop
    assert await a.enqueue(event("k1", ordering=None))
    assert [d.key for d in await a.claim_due("A", 100.0, 60.0, 10)] == ["k1"]


async def test_fanout_claim_and_marks_recorded_together(stores: OpenStore) -> None:
    store = stores()
    for i in range(4):  # one UPS change to four subscribers: a group of one each
        assert await store.enqueue(event(f"s{i}", destination=f"S{i}"))
    assert await store.enqueue(event("s1b", destination="S1"))  # S1's group: two
    assert await store.enqueue(event("u", destination="S0", ordering=None))
    got = await store.claim_due("A", 100.0, 60.0, 10, per_destination=5, max_destinations=2)
    assert [d.key for d in got] == ["s0", "s1", "s1b", "u"]  # S0 and S1, all of theirs
    await store.mark_delivered_many([(got[0].id, {"n": 1}), (got[3].id, None)], now=101.0)
    assert await store.delivery_state("ups", "s0") == ("delivered", 1, None)
    assert await store.delivery_state("ups", "u") == ("delivered", 1, None)
    assert await store.delivery_state("ups", "s1") == ("pending", 0, None)
    assert await store.count_pending() == 4
    assert [d.key for d in await store.claim_due("B", 100.0, 60.0, 10)] == ["s2", "s3"]

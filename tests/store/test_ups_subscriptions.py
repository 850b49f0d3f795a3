"""The UPS subscription tables and the queue claims a UPS fan-out makes, the same
on every backend (the upgrades that add the tables: test_ups.py)."""

from __future__ import annotations

from aiodimse.store import Delivery
from aiodimse.store.interface import UPSGlobalSubscription

from .conftest import OpenStore

UPS_PUSH = "1.2.840.10008.5.1.4.34.6.1"


def _report(key: str, aet: str, workitem: str, now: float = 100.0) -> Delivery:
    return Delivery(kind="ups", key=key, destination=aet, sop_class=UPS_PUSH,
                    sop_instance=workitem, payload="{}", event_type=1, ordering=workitem,
                    created_at=now, deadline=now + 60, next_attempt=now)


async def test_subscriptions_and_their_reports_are_written_together(stores: OpenStore) -> None:
    store = stores()
    await store.ups_subscribe("A", "1.1", True, [_report("k1", "A", "1.1")])
    # the same report key again: the subscription is written, the report not twice
    await store.ups_subscribe("A", "1.1", False, [_report("k1", "A", "1.1")])
    assert await store.ups_subscribers("1.1") == [("A", False)]
    assert await store.count_pending() == 1
    sub = UPSGlobalSubscription(aet="B", deletion_lock=True, filter='{"x": 1}')
    await store.ups_subscribe_global(sub, ["1.1", "1.2"],
                                     [_report("k2", "B", "1.1"), _report("k3", "B", "1.2")])
    assert await store.ups_global_subscriptions() == [sub]
    assert await store.ups_locked() == {"1.1", "1.2"}
    assert await store.ups_subscriber_aets() == ["A", "B"]
    await store.ups_created("1.3", [("B", True), ("A", False)],
                            [_report("k4", "B", "1.3"), _report("k5", "A", "1.3")])
    assert await store.ups_subscribers("1.3") == [("A", False), ("B", True)]
    assert await store.count_pending() == 5
    assert await store.ups_suspend_global("B")
    assert not await store.ups_suspend_global("A")  # none to suspend
    assert (await store.ups_global_subscriptions())[0].suspended
    assert not await store.ups_unsubscribe("A", "1.2")
    assert await store.ups_unsubscribe("A", "1.1")
    assert await store.ups_unsubscribe_global("B") == 4  # global + 3 workitems
    assert await store.ups_subscriber_aets() == ["A"]
    assert await store.ups_locked() == set()


async def test_one_claim_over_many_subscribers_takes_whole_groups_in_order(
        stores: OpenStore) -> None:
    """The deliverer's claim for one free slot among many destinations, each with
    its own ordered group (a UPS fan-out): the earliest destination's group, whole
    and in order; the others stay for the next claims."""
    store = stores()
    reports = [_report(f"{aet}-{n}", aet, "1.9") for n in range(2)
               for aet in (f"S{i:03d}" for i in range(200))]
    assert await store.ups_queue(reports) == 400
    first = await store.claim_due("me", 200.0, 30.0, 32, per_destination=32,
                                  max_destinations=1)
    assert [d.key for d in first] == ["S000-0", "S000-1"]
    second = await store.claim_due("me", 200.0, 30.0, 64, per_destination=32,
                                   max_destinations=2, skip_destinations={"S002"},
                                   held={d.id for d in first})
    assert [d.key for d in second] == ["S001-0", "S001-1", "S003-0", "S003-1"]


async def test_a_claim_full_of_destinations_still_takes_their_later_items(
        stores: OpenStore) -> None:
    """Once it has its destinations, a claim reads only theirs: A's later items (in
    another group, and unordered) come after B's earlier one is passed over."""
    store = stores()

    def at(key: str, aet: str, ordering: str | None, when: float) -> Delivery:
        return Delivery(kind="ups", key=key, destination=aet, sop_class=UPS_PUSH,
                        sop_instance="1.1", payload="{}", event_type=1, ordering=ordering,
                        created_at=when, deadline=when + 600, next_attempt=when)

    for item in (at("a1", "A", "g1", 1.0), at("b1", "B", "g1", 2.0),
                 at("a2", "A", "g2", 3.0), at("c1", "C", None, 4.0),
                 at("a3", "A", None, 5.0), at("a4", "A", "g1", 6.0)):
        assert await store.enqueue(item)
    got = await store.claim_due("me", 10.0, 30.0, 10, per_destination=32,
                                max_destinations=1)
    assert [d.key for d in got] == ["a1", "a4", "a2", "a3"]
    got = await store.claim_due("me", 10.0, 30.0, 10, per_destination=1,
                                max_destinations=2, held={d.id for d in got})
    assert [d.key for d in got] == ["b1", "c1"]

"""The association's parts: the read budget (aio/budget.py) and the idle watch
(aio/idle.py) on their own, without sockets; an ended association freed without
the garbage collector (no part makes a reference cycle with it)."""

from __future__ import annotations

import asyncio
import gc
import weakref

from aiodimse import Association, Event, evt
from aiodimse.aio.budget import ReadBudget
from aiodimse.aio.idle import IdleWatch

from ._helpers import STGCMT, STGCMT_INSTANCE, bounded, make_scu_ae, serving

LIMIT = 1000


class FakeServer:
    """The server's sum of what its associations hold, with its own budget."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffered = 0
        self.held: set[str] = set()

    def charge(self, assoc: str, delta: int) -> bool:
        self.buffered += delta
        return self.buffered > self.limit

    def below_low_water(self) -> bool:
        return self.buffered <= self.limit >> 1

    def reading_held(self, assoc: str, held: bool) -> None:
        if held:
            self.held.add(assoc)
        else:
            self.held.discard(assoc)


def make_budget(server: FakeServer | None) -> tuple[ReadBudget[str], list[bool]]:
    holds: list[bool] = []
    return ReadBudget("a", server, LIMIT, holds.append), holds


def test_reading_stops_past_the_association_budget_only_while_requests_are_queued() -> None:
    budget, holds = make_budget(None)
    budget.sync(LIMIT + 1, 0)  # a partial message alone: it will complete, not queue
    assert holds == [] and not budget.reading_held
    budget.sync(LIMIT + 2, 1)
    assert holds == [True] and budget.reading_held
    budget.sync(LIMIT // 2 + 1, 1)  # above half: still held
    assert holds == [True]
    budget.sync(LIMIT // 2, 1)  # half: reading restarts
    assert holds == [True, False] and not budget.reading_held


def test_the_server_budget_holds_reading_until_the_sum_is_at_half() -> None:
    server = FakeServer(limit=100)
    budget, holds = make_budget(server)
    budget.sync(150, 1)  # under its own budget, over the server's
    assert holds == [True] and server.held == {"a"}
    server.buffered -= 60  # another association drained: 90, above half of 100
    budget.check(1)
    assert holds == [True]
    server.buffered -= 50  # 40: below half
    budget.check(1)
    assert holds == [True, False] and server.held == set()


def test_an_ended_association_gives_back_what_it_held_and_charges_no_more() -> None:
    server = FakeServer(limit=100)
    budget, holds = make_budget(server)
    budget.sync(150, 1)
    assert server.buffered == 150 and server.held == {"a"}
    budget.give_back()
    assert server.buffered == 0 and server.held == set() and budget.held == 0
    budget.sync(500, 3)  # after the end: nothing charged, reading not touched
    assert server.buffered == 0 and holds == [True]


class FakeReceiving:
    received_at = 0.0


class FakeAssociation:
    def __init__(self) -> None:
        self.proto: FakeReceiving | None = FakeReceiving()
        self.in_flight = 0
        self.is_alive = True
        self.aborts: list[tuple[int, int]] = []

    def abort(self, *, source: int = 0, reason: int = 0) -> None:
        self.aborts.append((source, reason))
        self.is_alive = False


async def test_idle_check_aborts_only_a_silent_association_with_nothing_in_flight() -> None:
    assoc = FakeAssociation()
    watch = IdleWatch(assoc, asyncio.get_running_loop(), lambda: 100.0)
    assert not watch.check(105.0, 10.0)  # 5 s of silence
    assert assoc.proto is not None
    assoc.proto.received_at = 108.0  # bytes came in: the silence starts again
    assert not watch.check(115.0, 10.0)
    assoc.in_flight = 1  # a request outstanding: never given up for silence
    assert not watch.check(130.0, 10.0)
    assoc.in_flight = 0
    assert watch.check(130.0, 10.0)
    assert assoc.aborts == [(2, 0)]


async def test_a_watch_made_late_counts_from_the_last_bytes_received() -> None:
    """An acceptor's watch is made on first use (the sweep's first look): the silence
    runs from the protocol's last bytes, not from when the watch was made."""
    assoc = FakeAssociation()
    assert assoc.proto is not None
    assoc.proto.received_at = 95.0
    waiters: list[asyncio.Future[None]] = []
    watch = IdleWatch(assoc, asyncio.get_running_loop(), lambda: 200.0, waiters, since=0.0)
    assert watch.waiters is waiters  # the association's list, kept for good
    assert not watch.check(104.0, 10.0)
    assert watch.check(106.0, 10.0)  # 11 s after the last bytes
    assert assoc.aborts == [(2, 0)]


async def test_wait_returns_at_once_when_idle_and_wakes_when_requests_end() -> None:
    assoc = FakeAssociation()
    watch = IdleWatch(assoc, asyncio.get_running_loop(), lambda: 0.0)
    held = watch.waiters  # the association and serving.py keep this list
    await asyncio.wait_for(watch.wait(), 1)  # nothing in flight
    assoc.in_flight = 1
    waiting = asyncio.ensure_future(watch.wait())
    await asyncio.sleep(0)
    watch.check_waiters()  # still in flight: not woken
    await asyncio.sleep(0)
    assert not waiting.done()
    assoc.in_flight = 0
    watch.check_waiters()
    await asyncio.wait_for(waiting, 1)
    assert watch.waiters == [] and watch.waiters is held


async def test_a_requestors_idle_timer_aborts_after_the_network_timeout() -> None:
    loop = asyncio.get_running_loop()
    assoc = FakeAssociation()
    watch = IdleWatch(assoc, loop, loop.time)
    watch.start_timer(0.05)
    assert watch.timer is not None
    await asyncio.sleep(0.2)
    assert assoc.aborts == [(2, 0)]
    watch.stop()
    assert watch.timer is None


async def test_an_ended_association_is_freed_without_the_garbage_collector() -> None:
    """Its parts hold no reference back that would make a cycle (serving.py takes the
    association per call; the budget, our requests and the idle watch let go at the
    end): an association that served requests and sent its own is freed by reference
    counting, as the protocol's is (docs/internals.md)."""
    seen: list[weakref.ref[Association]] = []

    async def on_action(event: Event) -> tuple[int, None]:
        seen.append(weakref.ref(event.assoc))
        await asyncio.sleep(0)  # suspended once: answered from a Task (serving.py)
        return 0x0000, None

    gc.collect()
    gc.disable()
    try:
        async with serving([(evt.EVT_N_ACTION, on_action)]) as server:
            scu = make_scu_ae()
            assoc = await bounded(scu.associate("127.0.0.1", server.port))
            for _ in range(3):
                status, _ = await bounded(assoc.send_n_action(None, 1, STGCMT,
                                                              STGCMT_INSTANCE))
                assert status.Status == 0x0000
            ours = weakref.ref(assoc)
            await bounded(assoc.release())
            del assoc
            for _ in range(5):
                await asyncio.sleep(0.01)
            assert seen and seen[0]() is None  # the server's, freed at once
            assert ours() is None
    finally:
        gc.enable()

"""PromptFuture: a waiter resumes at the end of data_received, else as with asyncio.Future.

The tests complete futures from plain loop callbacks (as data_received runs), where
no task is current, unless they say otherwise.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from aiodimse import AE
from aiodimse.aio.prompt import PromptFuture, run_wakes
from aiodimse.aio.protocol import DULProtocol
from benchmarks import pdus

from ._helpers import VERIFICATION, bounded, session

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


class Sink:
    """A protocol's part in it: whether inside data_received, and what woke meanwhile."""

    def __init__(self) -> None:
        self.receiving = False
        self.woken: list[PromptFuture[Any]] | None = None

    def end_of_data_received(self, loop: asyncio.AbstractEventLoop) -> None:
        woken, self.woken = self.woken, None
        if woken:
            run_wakes(loop, woken)
        self.receiving = False


async def in_callback(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` from a plain loop callback (no current task) and return its result."""
    loop = asyncio.get_running_loop()
    out: asyncio.Future[Any] = loop.create_future()
    loop.call_soon(lambda: out.set_result(fn()))
    return await bounded(out)


async def waiting_task(fut: PromptFuture[Any]) -> tuple[asyncio.Task[Any], list[Any]]:
    """A task awaiting ``fut`` that records what it got; started and parked on it."""
    got: list[Any] = []

    async def waiter() -> None:
        try:
            got.append(await fut)
        except BaseException as exc:
            got.append(exc)
            raise

    task = asyncio.get_running_loop().create_task(waiter())
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()
    return task, got


async def test_a_waiter_resumes_at_the_end_of_data_received_not_a_loop_turn_later() -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    fut: PromptFuture[int] = PromptFuture(loop, sink)
    task, got = await waiting_task(fut)

    def data_received() -> tuple[list[Any], list[Any], bool]:
        sink.receiving = True
        fut.set_result(7)
        during = list(got)  # not yet: the chunk is still being processed
        sink.end_of_data_received(loop)
        return during, list(got), task.done()

    during, after, done = await in_callback(data_received)
    assert during == []
    assert after == [7] and done  # resumed and finished inside the same callback


async def test_outside_data_received_it_wakes_its_waiter_as_asyncio_future_does() -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    fut: PromptFuture[str] = PromptFuture(loop, sink)
    task, got = await waiting_task(fut)

    def complete() -> list[Any]:
        fut.set_result("x")
        return list(got)

    assert await in_callback(complete) == []  # scheduled, not run at once
    assert await bounded(task) is None
    assert got == ["x"]
    assert sink.woken is None


async def test_inside_a_running_task_the_wake_is_scheduled_not_run() -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    fut: PromptFuture[int] = PromptFuture(loop, sink)
    task, got = await waiting_task(fut)
    sink.receiving = True
    fut.set_result(1)
    sink.end_of_data_received(loop)  # this test's own task is current
    assert got == []  # entering the waiter's task here would be an error
    await bounded(task)
    assert got == [1]


async def test_an_exception_reaches_the_waiter() -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    fut: PromptFuture[int] = PromptFuture(loop, sink)
    task, got = await waiting_task(fut)

    def fail() -> None:
        sink.receiving = True
        fut.set_exception(ConnectionError("gone"))
        sink.end_of_data_received(loop)

    await in_callback(fail)
    assert task.done() and isinstance(got[0], ConnectionError)
    with pytest.raises(ConnectionError, match="gone"):
        task.result()
    with pytest.raises(ConnectionError):
        fut.result()
    assert isinstance(fut.exception(), ConnectionError)


async def test_cancelling_the_waiter_cancels_the_future_and_a_late_result_is_refused() -> None:
    loop = asyncio.get_running_loop()
    fut: PromptFuture[int] = PromptFuture(loop, Sink())
    task, _got = await waiting_task(fut)
    task.cancel("stop")
    with pytest.raises(asyncio.CancelledError):
        await bounded(task)
    assert fut.cancelled() and fut.done()
    with pytest.raises(asyncio.InvalidStateError):
        fut.set_result(1)  # as asyncio.Future: the association checks done() first
    with pytest.raises(asyncio.CancelledError):
        fut.result()
    assert not fut.cancel()


async def test_the_waiter_runs_in_its_own_context() -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    fut: PromptFuture[int] = PromptFuture(loop, sink)
    seen: list[str] = []

    async def waiter() -> None:
        VAR.set("task")
        await fut
        seen.append(VAR.get())

    task = loop.create_task(waiter())
    await asyncio.sleep(0)

    def data_received() -> None:
        sink.receiving = True
        fut.set_result(0)
        sink.end_of_data_received(loop)

    await in_callback(data_received)
    assert task.done() and seen == ["task"]
    assert VAR.get() == "outer"


async def test_a_failing_callback_goes_to_the_loop_handler_and_the_next_still_runs() -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    fut: PromptFuture[int] = PromptFuture(loop, sink)
    reported: list[dict[str, Any]] = []
    ran: list[str] = []
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx))
    try:
        def bad(_f: Any) -> None:
            raise ValueError("callback")

        fut.add_done_callback(bad)
        fut.add_done_callback(lambda _f: ran.append("second"))

        def data_received() -> None:
            sink.receiving = True
            fut.set_result(0)
            sink.end_of_data_received(loop)

        await in_callback(data_received)
    finally:
        loop.set_exception_handler(None)
    assert ran == ["second"]
    assert len(reported) == 1 and isinstance(reported[0]["exception"], ValueError)


async def test_asyncio_helpers_accept_it_and_removed_callbacks_do_not_run() -> None:
    loop = asyncio.get_running_loop()
    fut: PromptFuture[int] = PromptFuture(loop, None)
    is_future: bool = asyncio.isfuture(fut)  # what ensure_future, wait_for, gather check
    assert is_future
    ran: list[int] = []

    def cb(_f: Any) -> None:
        ran.append(1)

    fut.add_done_callback(cb)
    assert fut.remove_done_callback(cb) == 1
    loop.call_later(0.01, fut.set_result, 5)
    assert await asyncio.wait_for(fut, 5) == 5
    assert list(await asyncio.gather(fut)) == [5]
    await asyncio.sleep(0)
    assert ran == []
    late: list[int] = []
    fut.add_done_callback(lambda f: late.append(f.result()))  # done already: scheduled
    await asyncio.sleep(0)
    assert late == [5]


@pytest.mark.parametrize("inside", [True, False], ids=["data_received", "scheduled"])
async def test_callbacks_run_once_each_in_order_after_removals(inside: bool) -> None:
    """The first callback is kept apart from the others: order and removal still hold."""
    loop = asyncio.get_running_loop()
    sink = Sink()
    fut: PromptFuture[int] = PromptFuture(loop, sink)
    ran: list[str] = []

    def named(name: str) -> Callable[[Any], None]:
        return lambda f: ran.append(f"{name}={f.result()}")

    a, b, c, d = named("a"), named("b"), named("c"), named("d")
    for fn in (a, b, c, b, d):
        fut.add_done_callback(fn)
    assert fut.remove_done_callback(b) == 2  # both of its registrations
    assert fut.remove_done_callback(a) == 1  # the first: the next takes its place
    assert fut.remove_done_callback(a) == 0

    def complete() -> None:
        sink.receiving = inside
        fut.set_result(7)
        if inside:
            assert ran == []  # queued on the sink until the end of data_received
            sink.end_of_data_received(loop)
            assert ran == ["c=7", "d=7"]

    await in_callback(complete)
    await asyncio.sleep(0)
    assert ran == ["c=7", "d=7"]
    fut.add_done_callback(a)  # done already: scheduled, once
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert ran == ["c=7", "d=7", "a=7"]


async def test_an_scu_caller_resumes_inside_the_data_received_of_its_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The next request of a sequential SCU leaves in the write of the same callback."""
    async with session() as assoc:
        proto = assoc.proto
        assert proto is not None
        done_after: list[int] = []
        statuses: list[int] = []

        async def two_echoes() -> None:
            for _ in range(2):
                statuses.append(int((await assoc.send_c_echo()).Status))

        original = DULProtocol.data_received

        def data_received(self: DULProtocol, data: bytes) -> None:
            original(self, data)
            if self is proto:
                done_after.append(len(statuses))

        monkeypatch.setattr(DULProtocol, "data_received", data_received)
        await bounded(asyncio.get_running_loop().create_task(two_echoes()))
        assert statuses == [0, 0]
        # Each response's data_received ended with its caller already past it.
        assert done_after == [1, 2]


class AnsweringTransport(asyncio.Transport):
    """A transport whose peer answers inside ``write``: data_received nests in it.

    The first C-ECHO is answered from a loop callback: its caller resumes outside any
    task, and sends the next request from the end of that data_received.
    """

    def __init__(self) -> None:
        super().__init__()
        self.proto: Any = None
        self.depths: list[int] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        if data[0] == 0x01:  # A-ASSOCIATE-RQ
            self.proto.data_received(pdus.build_ac_for_rq(data))
        elif data[0] == 0x05:  # A-RELEASE-RQ
            self.proto.data_received(b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00")
        elif data[0] == 0x04:  # one C-ECHO-RQ: one PDU, one command PDV
            self.depths.append(len(inspect.stack(0)))
            _field, message_id, _status, _type = pdus.scan_command(data[12:])
            rsp = pdus.c_echo_rsp(pcid=data[10]).render(message_id)
            if len(self.depths) == 1:  # the first from a loop callback, outside any task
                asyncio.get_running_loop().call_soon(self.proto.data_received, rsp)
            else:
                self.proto.data_received(rsp)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 11112) if name == "peername" else default

    def close(self) -> None:
        if self.proto is not None:
            proto, self.proto = self.proto, None
            asyncio.get_running_loop().call_soon(proto.connection_lost, None)

    def is_closing(self) -> bool:
        return self.proto is None


async def test_a_peer_answering_inside_write_does_not_make_a_caller_recurse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nested data_received (a transport that answers synchronously) schedules the wake."""
    loop = asyncio.get_running_loop()
    transport = AnsweringTransport()

    async def connect(factory: Callable[[], Any], *_args: Any, **_kwargs: Any) -> Any:
        transport.proto = factory()
        transport.proto.connection_made(transport)
        return transport, transport.proto

    monkeypatch.setattr(loop, "create_connection", connect)
    ae = AE("TEST_SCU")
    ae.add_requested_context(VERIFICATION)
    assoc = await bounded(ae.associate("127.0.0.1", 11112, ae_title="TEST_SCP"))

    async def echoes() -> list[int]:  # awaited directly: this task is the one woken
        return [int((await assoc.send_c_echo()).Status) for _ in range(600)]

    statuses = await bounded(echoes())
    await bounded(assoc.release())
    assert statuses == [0] * 600
    assert max(transport.depths) - min(transport.depths) < 20  # the stack did not grow


async def test_a_keyboard_interrupt_in_a_waiter_leaves_the_other_waiters_scheduled() -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    first: PromptFuture[int] = PromptFuture(loop, sink)
    second: PromptFuture[int] = PromptFuture(loop, sink)
    ran: list[str] = []

    def interrupt(_f: Any) -> None:
        ran.append("interrupt")
        raise KeyboardInterrupt

    first.add_done_callback(interrupt)
    first.add_done_callback(lambda _f: ran.append("first, second callback"))
    second.add_done_callback(lambda _f: ran.append("second"))

    def data_received() -> list[str] | None:
        sink.receiving = True
        first.set_result(1)
        second.set_result(2)
        try:
            sink.end_of_data_received(loop)
        except KeyboardInterrupt:
            return list(ran)  # it propagates at once
        return None

    assert await in_callback(data_received) == ["interrupt"]
    await asyncio.sleep(0)
    assert ran == ["interrupt", "first, second callback", "second"]  # handed on, not lost


async def test_waiters_woken_during_an_interrupted_data_received_are_not_lost() -> None:
    """The protocol hands what is still queued to the loop when a waiter interrupts."""
    loop = asyncio.get_running_loop()
    ran: list[str] = []

    class User:
        def ul_events(self, events: Any) -> None:
            first.set_result(1)

    class Core:
        def receive_pdata(self, data: bytes, now: float) -> None:
            return None  # not the data path: receive_data's events

        def receive_data(self, data: bytes, now: float) -> list[object]:
            return [object()]

    proto = DULProtocol(Core(), User(), loop)  # type: ignore[arg-type]
    first: PromptFuture[int] = PromptFuture(loop, proto)
    later: PromptFuture[int] = PromptFuture(loop, proto)

    def interrupt(_f: Any) -> None:
        later.set_result(2)  # queued on the protocol while it runs the wakes
        raise KeyboardInterrupt

    first.add_done_callback(interrupt)
    later.add_done_callback(lambda _f: ran.append("later"))

    def data_received() -> bool:
        try:
            proto.data_received(b"")
        except KeyboardInterrupt:
            return proto.woken is None and not proto.receiving
        return False

    assert await in_callback(data_received)
    await asyncio.sleep(0)
    assert ran == ["later"]

"""run_eager: a coroutine's first step runs in the caller's callback, like a Task's would.

Each test starts the coroutine from a plain loop callback (as data_received is),
where no task is current: that is where the eager path is taken.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from aiodimse.aio.eager import Suspended, run_eager

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


async def rest_of(rest: Awaitable[Any]) -> Any:
    """What the caller of run_eager runs as the Task when the coroutine suspended."""
    return await rest


def start(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
          ) -> asyncio.Task[Any] | None:
    """run_eager, then the rest in a Task: None when the first step finished."""
    result = run_eager(loop, coro)
    if type(result) is Suspended:
        return result.start(rest_of(result.rest))
    return None


async def from_callback(
    make: Callable[[], Coroutine[Any, Any, Any]],
) -> tuple[asyncio.Task[Any] | None, bool]:
    """Start ``make()`` eagerly from a loop callback; (its task, whether a task was current)."""
    loop = asyncio.get_running_loop()
    out: asyncio.Future[tuple[asyncio.Task[Any] | None, bool]] = loop.create_future()

    def callback() -> None:
        current = asyncio.current_task(loop) is not None
        out.set_result((start(loop, make()), current))

    loop.call_soon(callback)
    return await asyncio.wait_for(out, 5)


async def test_the_result_of_a_first_step_that_returns_comes_back_directly() -> None:
    loop = asyncio.get_running_loop()
    out: asyncio.Future[object] = loop.create_future()

    async def quick() -> tuple[int, None]:
        return 0x0110, None

    loop.call_soon(lambda: out.set_result(run_eager(loop, quick())))
    assert await asyncio.wait_for(out, 5) == (0x0110, None)


async def test_a_coroutine_that_never_suspends_runs_to_the_end_without_a_task() -> None:
    seen: list[object] = []

    async def quick() -> None:
        seen.append(asyncio.current_task())

    task, current = await from_callback(quick)
    assert not current  # the callback ran outside any task: the eager path
    assert task is None
    assert len(seen) == 1 and seen[0] is not None  # a current task, even so


async def test_a_suspending_coroutine_continues_in_a_task() -> None:
    steps: list[str] = []
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def slow() -> int:
        steps.append("first")
        value = await gate
        await asyncio.sleep(0)  # a bare yield goes through the hand-over too
        steps.append(f"second {value}")
        return value * 2

    task, _ = await from_callback(slow)
    assert steps == ["first"]  # the first step ran before start_eager returned
    assert task is not None and not task.done()
    gate.set_result(21)
    assert await asyncio.wait_for(task, 5) == 42
    assert steps == ["first", "second 21"]


async def test_timeout_entered_in_the_first_step_cancels_after_the_suspension() -> None:
    outcome: list[str] = []

    async def handler() -> None:
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(10)
        except TimeoutError:
            outcome.append("timed out")
        outcome.append("went on")

    task, _ = await from_callback(handler)
    assert task is not None
    await asyncio.wait_for(task, 5)
    assert outcome == ["timed out", "went on"]
    assert not task.cancelled()


async def test_a_task_group_in_the_first_step_works() -> None:
    async def child(n: int) -> int:
        await asyncio.sleep(0.01)
        return n

    results: list[int] = []

    async def handler() -> None:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(child(n)) for n in range(3)]
        results.extend(t.result() for t in tasks)

    task, _ = await from_callback(handler)
    assert task is not None
    await asyncio.wait_for(task, 5)
    assert results == [0, 1, 2]


async def test_cancelling_the_task_reaches_the_coroutine() -> None:
    events: list[str] = []

    async def handler() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    task, _ = await from_callback(handler)
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert events == ["cancelled"]


async def test_a_cancel_asked_in_the_first_step_applies_to_the_task() -> None:
    async def handler() -> str:
        me = asyncio.current_task()
        assert me is not None
        me.cancel()
        await asyncio.sleep(10)
        return "not cancelled"

    task, _ = await from_callback(handler)
    assert task is not None
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


async def test_context_variables_set_by_the_coroutine_stay_in_its_own_context() -> None:
    seen: list[str] = []

    async def handler() -> None:
        VAR.set("inner")
        await asyncio.sleep(0)
        seen.append(VAR.get())

    task, _ = await from_callback(handler)
    assert VAR.get() == "outer"
    assert task is not None
    await asyncio.wait_for(task, 5)
    assert seen == ["inner"]


async def test_an_exception_in_the_first_step_is_raised_to_the_caller() -> None:
    loop = asyncio.get_running_loop()
    out: asyncio.Future[BaseException | None] = loop.create_future()

    async def broken() -> None:
        raise ValueError("boom")

    def callback() -> None:
        try:
            run_eager(loop, broken())
        except ValueError as exc:
            out.set_result(exc)
        else:
            out.set_result(None)

    loop.call_soon(callback)
    assert str(await asyncio.wait_for(out, 5)) == "boom"
    assert asyncio.current_task() is not None  # the stand-in left; our task is current


async def test_inside_a_running_task_an_ordinary_task_is_made() -> None:
    order: list[str] = []

    async def handler() -> None:
        order.append("ran")

    task = start(asyncio.get_running_loop(), handler())  # we are a task here
    assert task is not None and order == []
    await asyncio.wait_for(task, 5)
    assert order == ["ran"]

"""run_eager: a coroutine's first step runs in the caller's callback, like a Task's would.

Each test starts the coroutine from a plain loop callback (as data_received is),
where no task is current: that is where the eager path is taken. On Python 3.10
(``EAGER`` false) nothing runs there and a Task runs it all: the same tests check the
same outcomes, and that the first step waits for that Task. ``run_in_task`` (the
fallback when asyncio's private hooks are missing) is put through them on every
version.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest

from aiodimse.aio import eager
from aiodimse.aio.eager import EAGER, Suspended, run_in_task

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


async def rest_of(rest: Awaitable[Any]) -> Any:
    """What the caller of run_eager runs as the Task when the coroutine suspended."""
    return await rest


@pytest.fixture(params=["run_eager", "run_in_task"], autouse=True)
def variant(request: pytest.FixtureRequest) -> bool:
    """Each test runs with this Python's run_eager and with the fallback; True: eager."""
    if request.param == "run_in_task":
        _run[0] = run_in_task
        return False
    _run[0] = eager.run_eager
    return EAGER


_run: list[Callable[[asyncio.AbstractEventLoop, Coroutine[Any, Any, Any]], Any]] = [
    eager.run_eager]


def test_the_first_step_runs_in_the_callback_from_python_3_11() -> None:
    assert EAGER is (sys.version_info >= (3, 11))


@contextlib.asynccontextmanager
async def timeout(delay: float) -> AsyncIterator[None]:
    """``asyncio.timeout`` where it exists (3.11+); on 3.10 what it does, by hand."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(delay):
            yield
        return
    me = asyncio.current_task()
    assert me is not None
    handle = asyncio.get_running_loop().call_later(delay, me.cancel)
    try:
        yield
    except asyncio.CancelledError:
        raise TimeoutError from None
    finally:
        handle.cancel()


async def gather_in_group(coros: list[Coroutine[Any, Any, int]]) -> list[int]:
    """Children made in the current task: a TaskGroup (3.11+), else create_task + gather."""
    if sys.version_info >= (3, 11):
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
        return [t.result() for t in tasks]
    return list(await asyncio.gather(*(asyncio.get_running_loop().create_task(c)
                                       for c in coros)))


def start(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
          ) -> asyncio.Task[Any] | None:
    """run_eager, then the rest in a Task: None when the first step finished."""
    result = _run[0](loop, coro)
    if type(result) is Suspended:
        return result.start(rest_of(result.rest))
    return None


async def from_callback(
    make: Callable[[], Coroutine[Any, Any, Any]], now: Callable[[], Any] = lambda: None,
) -> tuple[asyncio.Task[Any] | None, bool, Any]:
    """Start ``make()`` eagerly from a loop callback.

    (its task, whether a task was current, ``now()`` as the callback returned).
    """
    loop = asyncio.get_running_loop()
    out: asyncio.Future[tuple[asyncio.Task[Any] | None, bool, Any]] = loop.create_future()

    def callback() -> None:
        current = asyncio.current_task(loop) is not None
        task = start(loop, make())
        out.set_result((task, current, now()))

    loop.call_soon(callback)
    return await asyncio.wait_for(out, 5)


async def test_the_result_of_a_first_step_that_returns_comes_back_directly(
    variant: bool,
) -> None:
    loop = asyncio.get_running_loop()
    out: asyncio.Future[object] = loop.create_future()

    async def quick() -> tuple[int, None]:
        return 0x0110, None

    loop.call_soon(lambda: out.set_result(_run[0](loop, quick())))
    result = await asyncio.wait_for(out, 5)
    if variant:
        assert result == (0x0110, None)
    else:  # the caller's Task runs it
        assert type(result) is Suspended
        task = result.start(rest_of(result.rest))
        assert await asyncio.wait_for(task, 5) == (0x0110, None)


async def test_a_coroutine_that_never_suspends_runs_to_the_end_without_a_task(
    variant: bool,
) -> None:
    seen: list[object] = []

    async def quick() -> None:
        seen.append(asyncio.current_task())

    task, current, seen_then = await from_callback(quick, lambda: len(seen))
    assert not current  # the callback ran outside any task: the eager path
    if variant:
        assert task is None
        assert seen_then == 1
    else:
        assert task is not None and seen_then == 0  # nothing ran in the callback
        await asyncio.wait_for(task, 5)
    assert len(seen) == 1 and seen[0] is not None  # a current task, even so


async def test_a_suspending_coroutine_continues_in_a_task(variant: bool) -> None:
    steps: list[str] = []
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def slow() -> int:
        steps.append("first")
        value = await gate
        await asyncio.sleep(0)  # a bare yield goes through the hand-over too
        steps.append(f"second {value}")
        return value * 2

    task, _, steps_then = await from_callback(slow, lambda: list(steps))
    assert steps_then == (["first"] if variant else [])  # eager: ran before start returned
    assert task is not None and not task.done()
    for _ in range(3):
        await asyncio.sleep(0)
    assert steps == ["first"]
    gate.set_result(21)
    assert await asyncio.wait_for(task, 5) == 42
    assert steps == ["first", "second 21"]


async def test_timeout_entered_in_the_first_step_cancels_after_the_suspension() -> None:
    outcome: list[str] = []

    async def handler() -> None:
        try:
            async with timeout(0.05):
                await asyncio.sleep(10)
        except TimeoutError:
            outcome.append("timed out")
        outcome.append("went on")

    task, _, _ = await from_callback(handler)
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
        results.extend(await gather_in_group([child(n) for n in range(3)]))

    task, _, _ = await from_callback(handler)
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

    task, _, _ = await from_callback(handler)
    assert task is not None
    for _ in range(3):  # the fallback's task has not started its step yet
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

    task, _, _ = await from_callback(handler)
    assert task is not None
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


async def test_context_variables_set_by_the_coroutine_stay_in_its_own_context() -> None:
    seen: list[str] = []

    async def handler() -> None:
        VAR.set("inner")
        await asyncio.sleep(0)
        seen.append(VAR.get())

    task, _, _ = await from_callback(handler)
    assert VAR.get() == "outer"
    assert task is not None
    await asyncio.wait_for(task, 5)
    assert seen == ["inner"]
    assert VAR.get() == "outer"


async def test_an_exception_in_the_first_step_is_raised_to_the_caller(variant: bool) -> None:
    loop = asyncio.get_running_loop()
    out: asyncio.Future[BaseException | None] = loop.create_future()

    async def broken() -> None:
        raise ValueError("boom")

    def callback() -> None:
        try:
            result = _run[0](loop, broken())
            if not variant:  # raised by the Task that runs it
                assert type(result) is Suspended
                task = result.start(rest_of(result.rest))
                task.add_done_callback(lambda t: out.set_result(t.exception()))
                return
        except ValueError as exc:
            out.set_result(exc)
        else:
            out.set_result(None)

    loop.call_soon(callback)
    assert str(await asyncio.wait_for(out, 5)) == "boom"
    assert asyncio.current_task() is not None  # the stand-in left; our task is current


async def test_inside_a_running_task_an_ordinary_task_is_made() -> None:
    """On every Python: no first step inside another task's step (3.12's eager Task
    would run it there), so handlers start in the same order everywhere."""
    order: list[str] = []
    me = asyncio.current_task()
    seen: list[object] = []

    async def handler() -> str:
        order.append("ran")
        seen.append(asyncio.current_task())
        return "done"

    task = start(asyncio.get_running_loop(), handler())  # we are a task here
    assert task is not None and order == []
    assert await asyncio.wait_for(task, 5) == "done"
    assert order == ["ran"]
    assert seen[0] is task and seen[0] is not me

"""Run a coroutine's first step at once, inside the current callback (an eager start).

Most request handlers finish without ever suspending. Run as a Task, each still costs
a Task object, a scheduled step and one more event-loop iteration (an extra
``epoll_wait``), about a quarter of the server's own CPU per request. Python 3.12 has
``asyncio.Task(eager_start=True)`` for this; on 3.11 :func:`run_eager` does the same
(through asyncio's private current-task hooks, see :mod:`aiodimse.compat`):
it runs the first step directly, with a stand-in set as the current task (so that
``asyncio.current_task()``, ``asyncio.timeout()`` and ``TaskGroup`` work), and moves
the coroutine into a real Task only when it suspends. The stand-in then forwards
to that Task, so a timeout entered before the suspension still cancels the right one.
On 3.10 (and wherever the hooks are missing) every handler simply runs in a Task.

The caller gets the coroutine's result directly, so that what it does with it (the
association answers the request) needs no coroutine of its own either.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from ..compat import TaskSwitch, task_switch

__all__ = ["EAGER", "Suspended", "run_eager", "run_in_task"]


class Suspended:
    """A coroutine whose first step suspended: ``rest`` awaits the remainder.

    ``start(coro)`` runs ``coro`` (which awaits ``rest``) as the Task that takes over:
    in the context of the first step, and as the task that ``current_task()`` gave
    during that step.
    """

    __slots__ = ("_context", "_loop", "_stand_in", "rest")

    def __init__(self, loop: asyncio.AbstractEventLoop, rest: Awaitable[Any],
                 context: contextvars.Context | None = None, stand_in: Any = None) -> None:
        self._loop = loop
        self.rest = rest
        self._context = context
        self._stand_in = stand_in

    def start(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        if self._context is None:
            return self._loop.create_task(coro)
        if sys.version_info >= (3, 11):
            task = self._loop.create_task(coro, context=self._context)
        else:  # not reached: 3.10 keeps no context
            task = self._loop.create_task(coro)
        self._stand_in.hand_over(task)
        return task


RunEager = Callable[[asyncio.AbstractEventLoop, Coroutine[Any, Any, Any]], Any]


def run_in_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> Any:
    """No first step now: the caller's Task runs it all (3.10, or no private hooks)."""
    return Suspended(loop, coro)


run_eager: RunEager
if sys.version_info >= (3, 12):
    _current_task = asyncio.current_task

    def run_eager(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro``'s first step now: its result, or a ``Suspended``; raises as it does.

        Inside a running task, as on 3.11, nothing runs now: the caller's Task runs it
        all (an eager Task would run it there, so handlers would start in a different
        order on different Pythons).
        """
        if _current_task(loop) is not None:
            return Suspended(loop, coro)
        task = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
        if task.done():
            return task.result()
        return Suspended(loop, task)

elif sys.version_info >= (3, 11):
    _new = object.__new__

    class _StandIn:
        """The current task during a first step run outside any Task (Python 3.11).

        Once the coroutine suspends and moves into a real Task, every call is
        forwarded there; a cancel asked for before that is applied to the Task.
        """

        __slots__ = ("_cancel", "_coro", "_loop", "task")
        # Filled in by run_eager, without an __init__ call (one per request).
        _loop: asyncio.AbstractEventLoop
        _coro: Coroutine[Any, Any, Any]
        _cancel: tuple[Any] | None  # (msg,) once cancel() was called
        task: asyncio.Task[Any] | None

        def cancel(self, msg: Any = None) -> bool:
            if self.task is not None:
                return self.task.cancel(msg)
            self._cancel = (msg,)
            return True

        def cancelling(self) -> int:
            if self.task is not None:
                return self.task.cancelling()
            return 1 if self._cancel is not None else 0

        def uncancel(self) -> int:
            if self.task is not None:
                return self.task.uncancel()
            self._cancel = None
            return 0

        def done(self) -> bool:
            return self.task.done() if self.task is not None else False

        def cancelled(self) -> bool:
            return self.task.cancelled() if self.task is not None else False

        def get_loop(self) -> asyncio.AbstractEventLoop:
            return self._loop

        def get_coro(self) -> Coroutine[Any, Any, Any]:
            return self._coro

        def get_name(self) -> str:
            return self.task.get_name() if self.task is not None else "aiodimse-eager"

        def __repr__(self) -> str:
            return f"<eager start of {self._coro!r} task={self.task!r}>"

        def hand_over(self, task: asyncio.Task[Any]) -> None:
            self.task = task
            if self._cancel is not None:
                task.cancel(self._cancel[0])

    @types.coroutine
    def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, None, Any]:
        """``yield from coro`` for a coroutine whose first step already yielded."""
        while True:
            try:
                yield yielded
            except BaseException as exc:  # thrown in by the Task: cancellation
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(None)
                except StopIteration as stop:
                    return stop.value

    def eager_by_hand(switch: TaskSwitch) -> RunEager:
        """A run_eager that enters a stand-in as the current task through ``switch``."""
        enter, leave, current = switch.enter, switch.leave, switch.current

        def run_eager(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> Any:
            """Run ``coro``'s first step now: its result, or a ``Suspended``; raises as it does.

            Inside a running task (a handler's own step) there can be no second current
            task: nothing runs now, and the caller's Task runs it all.
            """
            if loop in current:
                return Suspended(loop, coro)
            context = contextvars.copy_context()  # what a Task would run it in
            stand_in = _new(_StandIn)
            stand_in._loop = loop
            stand_in._coro = coro
            stand_in._cancel = None
            stand_in.task = None
            enter(loop, stand_in)
            try:
                yielded = context.run(coro.send, None)
            except StopIteration as stop:
                return stop.value
            finally:
                leave(loop, stand_in)
            return Suspended(loop, _resume(coro, yielded), context, stand_in)

        return run_eager

    _switch = task_switch()
    run_eager = run_in_task if _switch is None else eager_by_hand(_switch)

else:
    run_eager = run_in_task

EAGER = run_eager is not run_in_task
"""Whether a handler's first step runs in the caller's callback (False: Python 3.10)."""

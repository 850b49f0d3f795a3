"""Start a coroutine at once, inside the current callback (an eager task start).

Most request handlers finish without ever suspending. Run as a Task, each still costs
a Task object, a scheduled step and one more event-loop iteration (an extra
``epoll_wait``), about a quarter of the server's own CPU per request. Python 3.12 has
``asyncio.Task(eager_start=True)`` for this; on 3.11 :func:`start_eager` does the same:
it runs the first step directly, with a stand-in set as the current task (so that
``asyncio.current_task()``, ``asyncio.timeout()`` and ``TaskGroup`` work), and moves
the coroutine into a real Task only when it suspends. The stand-in then forwards
to that Task, so a timeout entered before the suspension still cancels the right one.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import types
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["start_eager"]

log = logging.getLogger("aiodimse.eager")


def _log_failure(coro: Coroutine[Any, Any, Any], exc: BaseException) -> None:
    if not isinstance(exc, asyncio.CancelledError):
        log.error("coroutine %r raised in its first step", coro, exc_info=exc)


if sys.version_info >= (3, 12):

    def start_eager(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
    ) -> asyncio.Task[Any] | None:
        """Run ``coro``'s first step now: None if it finished, else its Task."""
        task = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
        if not task.done():
            return task
        if not task.cancelled() and task.exception() is not None:
            _log_failure(coro, task.exception())  # type: ignore[arg-type]
        return None

elif sys.version_info < (3, 11):  # no Task context, no cancelling(): plain Tasks

    def start_eager(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
    ) -> asyncio.Task[Any] | None:
        """Python 3.10: an ordinary Task."""
        return loop.create_task(coro)

else:
    from asyncio.tasks import _enter_task, _leave_task

    _current_tasks: dict[asyncio.AbstractEventLoop, Any] = asyncio.tasks._current_tasks  # type: ignore[attr-defined]

    class _StandIn:
        """The current task during a first step run outside any Task (Python 3.11).

        Once the coroutine suspends and moves into a real Task, every call is
        forwarded there; a cancel asked for before that is applied to the Task.
        """

        __slots__ = ("_cancel", "_coro", "_loop", "task")

        def __init__(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
                     ) -> None:
            self._loop = loop
            self._coro = coro
            self._cancel: tuple[Any] | None = None  # (msg,) once cancel() was called
            self.task: asyncio.Task[Any] | None = None

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

    def start_eager(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
    ) -> asyncio.Task[Any] | None:
        """Run ``coro``'s first step now: None if it finished, else its Task.

        Inside a running task (a handler's own step) there can be no second current
        task, so the coroutine gets an ordinary Task there.
        """
        if loop in _current_tasks:
            return loop.create_task(coro)
        context = contextvars.copy_context()  # what a Task would run it in
        stand_in = _StandIn(loop, coro)
        _enter_task(loop, stand_in)  # type: ignore[arg-type]
        try:
            yielded = context.run(coro.send, None)
        except StopIteration:
            return None
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            _log_failure(coro, exc)
            return None
        finally:
            _leave_task(loop, stand_in)  # type: ignore[arg-type]
        task = loop.create_task(_resume(coro, yielded), context=context)
        stand_in.hand_over(task)
        return task

"""A future whose waiters resume at the end of the current ``data_received``.

An SCU awaiting a response resumes through ``asyncio.Future``: ``set_result``
schedules the waiting task's step with ``call_soon``, so on asyncio's own loop every
request costs one more event-loop iteration (an ``epoll_wait`` and the loop's own
bookkeeping, a few percent of the SCU's instructions) before the caller can send the
next one.

A :class:`PromptFuture` completed while its protocol is inside ``data_received``
instead queues itself on the protocol, which runs the waiters' callbacks at the end
of that call, before it writes: what the resumed caller sends goes out in the same
write. Completed at any other time, while a task is running (a waiter must not run
inside another task) or in a ``data_received`` nested in our own write, it behaves
as ``asyncio.Future`` does.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Generator
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["PromptFuture", "WakeSink", "run_wakes"]

T = TypeVar("T")
_Callback = Callable[[Any], object]

_PENDING = 0
_FINISHED = 1
_CANCELLED = 2


class WakeSink(Protocol):
    """Where completed futures wait for the end of ``data_received`` (the protocol)."""

    receiving: bool
    woken: list[PromptFuture[Any]] | None


class PromptFuture(Generic[T]):
    """Enough of ``asyncio.Future`` for a task to await it (duck-typed, as asyncio allows).

    Its first done callback (the waiting task's, mostly the only one) is kept in two
    slots, any further ones in a list: no list or tuple made per request.
    """

    __slots__ = (
        "_asyncio_future_blocking",
        "_context",
        "_exception",
        "_fn",
        "_loop",
        "_more",
        "_result",
        "_sink",
        "_state",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: WakeSink | None) -> None:
        self._loop = loop
        self._sink = sink
        self._state = _PENDING
        self._result: Any = None  # the result, or the cancel message when cancelled
        self._exception: BaseException | None = None
        self._fn: _Callback | None = None  # the first callback; _context is its context
        self._more: list[tuple[_Callback, contextvars.Context]] | None = None
        self._asyncio_future_blocking = False

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> T:
        state = self._state
        if state == _FINISHED:
            if self._exception is not None:
                raise self._exception
            return self._result  # type: ignore[no-any-return]
        if state == _CANCELLED:
            raise asyncio.CancelledError(self._result)
        raise asyncio.InvalidStateError("result is not set")

    def exception(self) -> BaseException | None:
        if self._state == _CANCELLED:
            raise asyncio.CancelledError(self._result)
        if self._state == _PENDING:
            raise asyncio.InvalidStateError("exception is not set")
        return self._exception

    def add_done_callback(
        self, fn: _Callback, *, context: contextvars.Context | None = None
    ) -> None:
        if context is None:
            context = contextvars.copy_context()
        if self._state != _PENDING:
            self._loop.call_soon(fn, self, context=context)
        elif self._fn is None:
            self._fn = fn
            self._context = context
        elif self._more is None:
            self._more = [(fn, context)]
        else:
            self._more.append((fn, context))

    def remove_done_callback(self, fn: _Callback) -> int:
        callbacks = self._take()
        kept = [(f, c) for f, c in callbacks if f != fn]
        for f, c in kept:
            self.add_done_callback(f, context=c)
        return len(callbacks) - len(kept)

    def _take(self) -> list[tuple[_Callback, contextvars.Context]]:
        """The callbacks not run yet, in order, leaving none."""
        fn = self._fn
        if fn is None:
            return []
        callbacks = [(fn, self._context), *(self._more or ())]
        self._fn = self._more = None
        return callbacks

    def cancel(self, msg: Any = None) -> bool:
        if self._state != _PENDING:
            return False
        self._state = _CANCELLED
        self._result = msg
        self._schedule()  # from whoever cancels, often a running task: never at once
        return True

    def set_result(self, result: T) -> None:
        if self._state != _PENDING:
            raise asyncio.InvalidStateError("already done")
        self._result = result
        self._state = _FINISHED
        self._wake()

    def set_exception(self, exc: BaseException) -> None:
        if self._state != _PENDING:
            raise asyncio.InvalidStateError("already done")
        self._exception = exc
        self._state = _FINISHED
        self._wake()

    def _wake(self) -> None:
        if self._fn is None:
            return
        sink = self._sink
        if sink is not None and sink.receiving:
            if sink.woken is None:
                sink.woken = [self]
            else:
                sink.woken.append(self)
        else:
            self._schedule()

    def _schedule(self) -> None:
        for fn, context in self._take():
            self._loop.call_soon(fn, self, context=context)

    def __await__(self) -> Generator[Any, None, T]:
        if self._state == _PENDING:
            self._asyncio_future_blocking = True
            yield self
            if self._state == _PENDING:
                raise RuntimeError("await wasn't used with future")
        if self._state == _FINISHED and self._exception is None:
            return self._result  # type: ignore[no-any-return]
        return self.result()

    __iter__ = __await__


def run_wakes(loop: asyncio.AbstractEventLoop, woken: list[PromptFuture[Any]], *,
              nested: bool = False) -> None:
    """Run the callbacks of the futures ``woken`` queued (a waiting task's step, mostly).

    Inside a running task (a test calling ``data_received`` itself) they are scheduled
    instead: asyncio forbids entering one task inside another. So they are when
    ``nested``: the caller's own stack would grow with every request.
    """
    if nested or asyncio.current_task(loop) is not None:
        for fut in woken:
            fut._schedule()
        return
    for i, fut in enumerate(woken):
        while (fn := fut._fn) is not None:  # each callback taken off before it runs
            context = fut._context
            more = fut._more
            if more:
                fut._fn, fut._context = more.pop(0)
            else:
                fut._fn = None
            try:
                context.run(fn, fut)
            except (SystemExit, KeyboardInterrupt):
                # What has not run yet goes to the loop, as its ready queue would keep it.
                for rest in woken[i:]:
                    rest._schedule()
                raise
            except BaseException as exc:
                loop.call_exception_handler({
                    "message": "exception in a future's callback",
                    "exception": exc,
                    "future": fut,
                })

"""The event loop a command runs on: uvloop when it is installed (the ``speed`` extra),
else asyncio's; ``--loop`` chooses."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LOOPS", "LoopUnavailableError", "chosen_loop", "loop_factory", "run"]

T = TypeVar("T")

LOOPS = ("auto", "asyncio", "uvloop")


class LoopUnavailableError(RuntimeError):
    """``--loop uvloop`` where uvloop is not installed."""


def chosen_loop(name: str) -> str:
    """``auto`` resolved: uvloop if importable on this platform, else asyncio."""
    if name == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    if name == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise LoopUnavailableError(
            "--loop uvloop: uvloop is not installed (pip install 'aiodimse[speed]')")
    return name


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the loop ``name`` asks for; None for asyncio's default."""
    if chosen_loop(name) == "uvloop":
        import uvloop  # noqa: PLC0415 - optional dependency

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return None


def run(coro: Coroutine[Any, Any, T], name: str = "auto") -> T:
    """``asyncio.run`` on the chosen loop (Python 3.10 has no ``loop_factory``)."""
    factory = loop_factory(name)
    if factory is None:
        return asyncio.run(coro)
    runner_type: Any = getattr(asyncio, "Runner", None)  # Python 3.11 and later
    if runner_type is not None:
        with runner_type(loop_factory=factory) as runner:
            result: T = runner.run(coro)
            return result
    loop = factory()  # Python 3.10
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        asyncio.set_event_loop(None)
        loop.close()

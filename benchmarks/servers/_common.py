"""Shared start-up of the benchmark server scripts: arguments, limits, readiness line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from benchmarks.procs import raise_nofile

__all__ = ["parse_args", "announce", "not_available", "wait_for_stop"]


def parse_args(
    description: str, extra: argparse.ArgumentParser | None = None
) -> argparse.Namespace:
    parser = extra or argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    if args.host != "127.0.0.1":
        parser.error("benchmark servers listen on 127.0.0.1 only")
    raise_nofile()
    return args


def announce(port: int) -> None:
    """The readiness line the runner waits for."""
    print(f"READY {port}", flush=True)


def not_available(reason: str) -> None:
    """Tell the runner this contender cannot run (reported as n/a), then exit."""
    print(f"NA {reason}", flush=True)
    sys.exit(3)


def _set(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def wait_for_stop() -> None:
    """Return on SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, _set, stop)
    await stop

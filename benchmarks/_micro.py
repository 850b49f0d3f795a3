"""The command line shared by the in-process micro-benchmarks (micro_server/client)."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
from collections.abc import Callable, Coroutine
from typing import Any

Runner = Callable[[int, int], Coroutine[Any, Any, float]]


def micro_main(description: str, label: str, run: Runner, *, requests: int) -> int:
    """Parse --requests/--refs/--repeat/--profile; print min and median us per request."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--requests", type=int, default=requests)
    parser.add_argument("--refs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="runs; min and median shown")
    parser.add_argument("--profile", action="store_true", help="one run under cProfile")
    args = parser.parse_args()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(run(args.requests, args.refs))
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return 0
    runs = sorted(asyncio.run(run(args.requests, args.refs)) for _ in range(args.repeat))
    print(
        f"{label} ({args.refs} refs): {runs[0]:.1f} us CPU per request (min), "
        f"{statistics.median(runs):.1f} (median of {len(runs)}), in process"
    )
    return 0

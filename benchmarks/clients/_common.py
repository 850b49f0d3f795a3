"""Shared parts of the SCU contender scripts (row 7)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

__all__ = ["parse_args", "report", "Tally"]


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--op", choices=("naction", "echo"), default="naction")
    parser.add_argument("--refs", type=int, default=1)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--max-ops", type=int, default=1_000_000)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    if args.host != "127.0.0.1":
        parser.error("benchmark clients talk to 127.0.0.1 only")
    return args


class Tally:
    def __init__(self) -> None:
        self.ok = 0
        self.failures = 0
        self.errors: list[str] = []
        self.lat_us: list[int] = []
        self.t0 = time.monotonic()
        self.c0 = time.process_time()

    def record(self, ok: bool, started: float, why: str = "") -> None:
        if ok:
            self.ok += 1
            self.lat_us.append(int((time.perf_counter() - started) * 1e6))
        else:
            self.failures += 1
            if len(self.errors) < 5:
                self.errors.append(why)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failures": self.failures,
            "errors": self.errors,
            "t0": self.t0,
            "t1": time.monotonic(),
            "cpu": time.process_time() - self.c0,
            "lat_us": self.lat_us,
        }


def report(result: dict[str, Any]) -> None:
    print("DONE " + json.dumps(result), flush=True)

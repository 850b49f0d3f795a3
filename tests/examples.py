"""How many examples a property test draws: its own count on the main Python, a share
of it where ``AIODIMSE_EXAMPLES_PERCENT`` says so.

tests/other_pythons.sh sets a tenth for the other supported Pythons: the properties
check our own byte-level logic, which the main run already drew the full count for,
while what differs between Python versions (asyncio, typing, the standard library)
is what the rest of the suite exercises in full on each one.
"""

from __future__ import annotations

import os

__all__ = ["examples"]

_PERCENT = int(os.environ.get("AIODIMSE_EXAMPLES_PERCENT", "100"))


def examples(count: int) -> int:
    """``count`` scaled by the percentage, never below 10."""
    return max(10, count * _PERCENT // 100)

"""Inflating a received Deflated Explicit VR LE data set without holding the loop.

The association inflates a request's deflated data set here, in steps of
``INFLATE_STEP`` bytes with a loop iteration between them, before its handler
runs; the handler's lazy decode then reads the :class:`~aiodimse.datasets.Inflated`
bytes as Explicit VR LE. Past the AE's ``maximum_dataset_size`` or
``maximum_inflate_ratio`` the request is answered 0x0213 (resource limitation,
PS3.7 C.4), never handed to the handler.
"""

from __future__ import annotations

import asyncio

from .datasets import DEFAULT_MAX_INFLATE_RATIO, Inflated, Inflater

__all__ = ["inflate_in_steps"]


async def inflate_in_steps(data: bytes | bytearray | memoryview, *, max_length: int,
                           max_ratio: int | None = DEFAULT_MAX_INFLATE_RATIO) -> bytes:
    """``data`` inflated, yielding to the loop between steps; the result is ``Inflated``.

    Raises :class:`~aiodimse.datasets.InflateLimitError` past a limit and
    :class:`~aiodimse.datasets.DatasetDecodeError` on a broken stream.
    """
    inflater = Inflater(data, max_length=max_length, max_ratio=max_ratio)
    while not inflater.step():
        await asyncio.sleep(0)
    return inflater.result(Inflated)

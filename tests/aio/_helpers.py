"""Shared helpers for the asyncio tests: loopback servers, bounded awaits, SOP classes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from pydicom.dataset import Dataset

from aiodimse import AE, Association, Server
from aiodimse.handlers import HandlerSpec

__all__ = [
    "VERIFICATION",
    "STGCMT",
    "STGCMT_INSTANCE",
    "MPPS",
    "PRINTER",
    "PRINTER_INSTANCE",
    "FILM_SESSION",
    "ALL_CLASSES",
    "IMPLICIT_LE",
    "TIMEOUT",
    "bounded",
    "make_scp_ae",
    "make_scu_ae",
    "serving",
    "ds_of",
    "RawDataset",
    "session",
]

T = TypeVar("T")

VERIFICATION = "1.2.840.10008.1.1"
STGCMT = "1.2.840.10008.1.20.1"
STGCMT_INSTANCE = "1.2.840.10008.1.20.1.1"
MPPS = "1.2.840.10008.3.1.2.3.3"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"
FILM_SESSION = "1.2.840.10008.5.1.1.1"
ALL_CLASSES = (VERIFICATION, STGCMT, MPPS, PRINTER, FILM_SESSION)
IMPLICIT_LE = "1.2.840.10008.1.2"

TIMEOUT = 10.0
"""Upper bound on any single await in these tests."""


async def bounded(aw: Awaitable[T], timeout: float = TIMEOUT) -> T:
    """Await ``aw`` but never longer than ``timeout`` seconds."""
    return await asyncio.wait_for(aw, timeout)


def make_scp_ae(title: str = "TEST_SCP", classes: Iterable[str] = ALL_CLASSES) -> AE:
    ae = AE(title)
    for uid in classes:
        ae.add_supported_context(uid)
    return ae


def make_scu_ae(title: str = "TEST_SCU", classes: Iterable[str] = ALL_CLASSES) -> AE:
    ae = AE(title)
    for uid in classes:
        ae.add_requested_context(uid)
    return ae


@asynccontextmanager
async def serving(
    handlers: Iterable[HandlerSpec] | None = None,
    *,
    ae: AE | None = None,
    configure: Callable[[AE], Any] | None = None,
    **kwargs: Any,
) -> AsyncIterator[Server]:
    """A server on 127.0.0.1:<ephemeral>, shut down (no grace) on exit."""
    ae = ae if ae is not None else make_scp_ae()
    if configure is not None:
        configure(ae)
    server = await bounded(ae.start_server(("127.0.0.1", 0), evt_handlers=handlers, **kwargs))
    try:
        yield server
    finally:
        await bounded(server.shutdown(grace=0))


def ds_of(**elements: Any) -> Dataset:
    """A Dataset from keyword=value pairs."""
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


class RawDataset(Dataset):
    """A Dataset stand-in whose wire encoding is the given raw bytes (see ``raw_encoder``)."""

    def __init__(self, raw: bytes) -> None:
        super().__init__()
        self._raw = raw

    @property
    def raw(self) -> bytes:
        return self._raw


@asynccontextmanager
async def session(
    handlers: Iterable[HandlerSpec] | None = None,
    *,
    scu: AE | None = None,
    scp: AE | None = None,
    **assoc_kwargs: Any,
) -> AsyncIterator[Association]:
    """A server and one association with it (released on exit)."""
    scu = scu if scu is not None else make_scu_ae()
    async with (
        serving(handlers, ae=scp) as server,
        scu.associate("127.0.0.1", server.port, **assoc_kwargs) as assoc,
    ):
        yield assoc

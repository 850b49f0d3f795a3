"""Byte counting for observed connections, in subclasses so unobserved ones pay nothing.

A server with an observer (``aiodimse.observe``) builds its connections from these
two classes instead of ``DULProtocol`` and ``UpperLayer``: bytes in are counted where
the transport hands them to the protocol, bytes out where they leave the core
(``data_to_send``, the one way out). Both count into the same ``ByteCounts``.
"""

from __future__ import annotations

from typing import Protocol

from ..ul.machine import UpperLayer
from .protocol import DULProtocol

__all__ = ["ByteCounts", "CountingProtocol", "CountingUpperLayer"]


class ByteCounts(Protocol):
    """Where the counts go (``observe.AssociationRecord``)."""

    bytes_in: int
    bytes_out: int


class CountingUpperLayer(UpperLayer):
    """``UpperLayer`` that adds what it hands out to ``counts.bytes_out``."""

    __slots__ = ("counts",)

    counts: ByteCounts

    def data_to_send(self) -> bytes:
        out = UpperLayer.data_to_send(self)
        self.counts.bytes_out += len(out)
        return out


class CountingProtocol(DULProtocol):
    """``DULProtocol`` that adds what it receives to ``counts.bytes_in``."""

    __slots__ = ("counts",)

    counts: ByteCounts

    def data_received(self, data: bytes) -> None:
        self.counts.bytes_in += len(data)
        DULProtocol.data_received(self, data)

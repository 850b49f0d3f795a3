"""Layer 4: the asyncio adapter that drives the sans-IO core over a transport."""

from __future__ import annotations

from .protocol import DULProtocol, ULUser

__all__ = ["DULProtocol", "ULUser"]

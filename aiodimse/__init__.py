"""aiodimse: an asyncio-native DICOM network stack (PS3.8 upper layer, PS3.7 DIMSE)."""

from __future__ import annotations

from .errors import (
    AiodimseError,
    DIMSEError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)

__all__ = [
    "__version__",
    "AiodimseError",
    "DIMSEError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
]

__version__ = "0.1.0"

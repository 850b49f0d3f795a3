"""Exception types shared by every layer.

Errors are split by who is at fault: the peer (``RemoteProtocolError``, which carries
the A-ABORT to send) or the local caller (``LocalProtocolError``). Codes stay plain
ints so that values the standard does not define survive unchanged.
"""

from __future__ import annotations

__all__ = [
    "AiodimseError",
    "ProtocolError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "DIMSEError",
    "AssociationError",
    "AssociationRejectedError",
    "AssociationAbortedError",
    "DIMSETimeoutError",
]

# PS3.8 9.3.8: A-ABORT source 2 is the service provider; reasons for that source.
_SOURCE_PROVIDER = 2
_REASON_INVALID_PARAMETER = 6


class AiodimseError(Exception):
    """Base class of every error this library raises on purpose."""


class ProtocolError(AiodimseError):
    """A violation of PS3.8 or PS3.7, by either side."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something invalid.

    ``abort_source`` and ``abort_reason`` are the A-ABORT fields (PS3.8 9.3.8) that
    the upper layer sends in answer.
    """

    def __init__(
        self,
        message: str,
        *,
        abort_source: int = _SOURCE_PROVIDER,
        abort_reason: int = _REASON_INVALID_PARAMETER,
    ) -> None:
        super().__init__(message)
        self.abort_source = abort_source
        self.abort_reason = abort_reason


class LocalProtocolError(ProtocolError):
    """The local user asked for something the protocol does not allow now."""


class DIMSEError(AiodimseError):
    """A DIMSE message could not be built or understood.

    ``status`` is the DIMSE status to answer a request with (PS3.7 Annex C) when a
    response is still possible, e.g. 0x0120 for a missing mandatory field;
    ``message_id`` and ``command_field`` are what could be read of the request
    (None when unknown, in which case no response is possible).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0x0110,
        message_id: int | None = None,
        command_field: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message_id = message_id
        self.command_field = command_field


class AssociationError(AiodimseError):
    """The association could not be used for what was asked."""


class AssociationRejectedError(AssociationError):
    """The peer (or its provider) rejected the association (PS3.8 Table 9-21)."""

    def __init__(self, result: int, source: int, reason: int) -> None:
        super().__init__(
            f"association rejected: result {result}, source {source}, reason {reason}"
        )
        self.result = result
        self.source = source
        self.reason = reason


class AssociationAbortedError(AssociationError):
    """The association was aborted or its connection lost."""

    def __init__(self, message: str, *, source: int | None = None, reason: int | None = None):
        super().__init__(message)
        self.source = source
        self.reason = reason


class DIMSETimeoutError(AssociationError, TimeoutError):
    """No response arrived within the DIMSE timeout; the association was aborted."""

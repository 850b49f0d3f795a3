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
    "describe_rejection",
    "rejection_reason",
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


_REJECT_RESULTS = {1: "rejected permanent", 2: "rejected transient"}
_REJECT_SOURCES = {
    1: "service user",
    2: "service provider (ACSE)",
    3: "service provider (presentation)",
}
_REJECT_REASONS = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognized",
    (1, 7): "called AE title not recognized",
    (2, 1): "no reason given",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}


def rejection_reason(source: int, reason: int) -> str:
    """The reason of an A-ASSOCIATE-RJ in words (a reserved code: "reserved reason")."""
    return _REJECT_REASONS.get((source, reason), "reserved reason")


def describe_rejection(result: int, source: int, reason: int) -> str:
    """An A-ASSOCIATE-RJ in words (PS3.8 Table 9-21), with its codes."""
    words = (
        _REJECT_RESULTS.get(result, "rejected"),
        _REJECT_SOURCES.get(source, "unknown source"),
        rejection_reason(source, reason),
    )
    return f"{' / '.join(words)} (result {result}, source {source}, reason {reason})"


class AssociationRejectedError(AssociationError):
    """The peer (or its provider) rejected the association (PS3.8 Table 9-21)."""

    def __init__(self, result: int, source: int, reason: int) -> None:
        super().__init__(f"association rejected: {describe_rejection(result, source, reason)}")
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

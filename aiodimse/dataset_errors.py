"""The data set errors, apart from ``datasets`` so that ``fastds`` (which ``datasets``
imports) can raise them without importing ``datasets`` back."""

from __future__ import annotations

from .errors import AiodimseError

__all__ = [
    "DatasetError",
    "UnsupportedTransferSyntaxError",
    "DatasetEncodeError",
    "DatasetDecodeError",
    "InflateLimitError",
    "DatasetTooDeepError",
    "DatasetTruncatedError",
]


class DatasetError(AiodimseError):
    """A data set could not be encoded or decoded."""


class UnsupportedTransferSyntaxError(DatasetError):
    """The transfer syntax is not one this module can encode or decode."""

    def __init__(self, transfer_syntax_uid: str) -> None:
        super().__init__(f"unsupported transfer syntax {transfer_syntax_uid!r}")
        self.transfer_syntax_uid = transfer_syntax_uid


class DatasetEncodeError(DatasetError):
    """pydicom could not encode the Dataset (e.g. a value that fits no VR)."""


class DatasetDecodeError(DatasetError):
    """The bytes are not a valid data set in the given transfer syntax."""


class InflateLimitError(DatasetDecodeError):
    """A deflated data set inflates past the length cap or the ratio limit."""


class DatasetTooDeepError(DatasetDecodeError):
    """Sequences nest deeper than ``MAX_NESTING``: refused whole, never half-read."""


class DatasetTruncatedError(DatasetDecodeError):
    """A value or item runs past the end of the data set (or of its item): the data
    set was cut short. Refused whole: pydicom would read the value cut short."""

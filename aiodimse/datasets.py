"""The bridge between raw data-set bytes (layers 1-4) and pydicom Datasets (layer 6).

Layers 1-4 move data sets as bytes plus the presentation context's transfer syntax
UID; pydicom enters here. Decoding is meant to be called lazily, when a handler
first touches a data set, so that a broken data set fails there (as
:class:`DatasetDecodeError`) and not in the network layer. pydicom defers element
values, so a broken *value* may instead fail when that element is read, with
pydicom's own exception.

No pydicom configuration is changed; no file meta information is read or written.
"""

from __future__ import annotations

import io
import zlib

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from . import fastds as _fastds
from .errors import AiodimseError

__all__ = [
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_BIG_ENDIAN",
    "SUPPORTED_TRANSFER_SYNTAXES",
    "DEFAULT_MAX_INFLATED_LENGTH",
    "DatasetError",
    "UnsupportedTransferSyntaxError",
    "DatasetEncodeError",
    "DatasetDecodeError",
    "encode_dataset",
    "decode_dataset",
]

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

# UID -> (implicit VR, little endian, deflated)
_SYNTAXES: dict[str, tuple[bool, bool, bool]] = {
    IMPLICIT_VR_LITTLE_ENDIAN: (True, True, False),
    EXPLICIT_VR_LITTLE_ENDIAN: (False, True, False),
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: (False, True, True),
    EXPLICIT_VR_BIG_ENDIAN: (False, False, False),
}
SUPPORTED_TRANSFER_SYNTAXES = frozenset(_SYNTAXES)

DEFAULT_MAX_INFLATED_LENGTH = 1 << 30
"""Cap on an inflated Deflated Explicit VR LE data set (guards against zip bombs)."""


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


def _syntax(transfer_syntax_uid: str) -> tuple[bool, bool, bool]:
    try:
        return _SYNTAXES[transfer_syntax_uid.rstrip("\x00 ")]
    except KeyError:
        raise UnsupportedTransferSyntaxError(transfer_syntax_uid) from None


def encode_dataset(ds: Dataset, transfer_syntax_uid: str, *, compression_level: int = 6) -> bytes:
    """Encode ``ds`` (without file meta) in ``transfer_syntax_uid``.

    Deflated Explicit VR LE is raw deflate (RFC 1951, no zlib header), PS3.5 A.5.
    Like pydicom's writer, this may correct ambiguous VRs (US/SS, OB/OW) in ``ds``.
    """
    implicit, little, deflated = (
        _SYNTAXES.get(transfer_syntax_uid) or _syntax(transfer_syntax_uid)
    )
    # fastds writes pydicom's bytes exactly; None = a case it leaves to pydicom
    raw = _fastds.try_encode(ds, implicit) if little else None
    if raw is None:
        fp = DicomBytesIO()
        fp.is_implicit_VR = implicit
        fp.is_little_endian = little
        try:
            write_dataset(fp, ds)
        except Exception as exc:  # pydicom raises many types; re-typed here
            raise DatasetEncodeError(f"cannot encode data set: {exc}") from exc
        raw = fp.getvalue()
    if deflated:
        compressor = zlib.compressobj(compression_level, zlib.DEFLATED, -zlib.MAX_WBITS)
        raw = compressor.compress(raw) + compressor.flush()
    return raw


def decode_dataset(
    data: bytes | bytearray | memoryview,
    transfer_syntax_uid: str,
    *,
    max_inflated_length: int = DEFAULT_MAX_INFLATED_LENGTH,
) -> Dataset:
    """Decode a data set (no preamble, no file meta) from ``data``.

    Empty ``data`` gives an empty Dataset. A memoryview is copied once into the
    reader. Raises UnsupportedTransferSyntaxError or DatasetDecodeError.
    """
    implicit, little, deflated = (
        _SYNTAXES.get(transfer_syntax_uid) or _syntax(transfer_syntax_uid)
    )
    raw: bytes | bytearray | memoryview = data
    if deflated:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(data, max_inflated_length + 1)
        except zlib.error as exc:
            raise DatasetDecodeError(f"bad deflate stream: {exc}") from exc
        if len(raw) > max_inflated_length:
            raise DatasetDecodeError(f"inflated data set exceeds {max_inflated_length} bytes")
    if little:
        # fastds builds the Dataset pydicom would; None = a case it leaves to pydicom,
        # and on bytes it rejects pydicom decides too (it reads some leniently)
        try:
            fast = _fastds.try_decode(raw, implicit)
        except DatasetDecodeError:
            fast = None
        if fast is not None:
            return fast
    try:
        return read_dataset(io.BytesIO(raw), implicit, little)
    except Exception as exc:  # pydicom raises many types; re-typed here
        raise DatasetDecodeError(f"cannot decode data set: {exc}") from exc

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

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from . import fastds as _fastds
from .dataset_errors import (
    DatasetDecodeError,
    DatasetEncodeError,
    DatasetError,
    DatasetTooDeepError,
    DatasetTruncatedError,
    InflateLimitError,
    UnsupportedTransferSyntaxError,
)
from .status import PROCESSING_FAILURE, RESOURCE_LIMITATION

__all__ = [
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_BIG_ENDIAN",
    "SUPPORTED_TRANSFER_SYNTAXES",
    "DEFAULT_MAX_INFLATED_LENGTH",
    "DEFAULT_MAX_INFLATE_RATIO",
    "INFLATE_STEP",
    "DatasetError",
    "InflateLimitError",
    "DatasetTooDeepError",
    "DatasetTruncatedError",
    "MAX_NESTING",
    "refusal_status",
    "Inflated",
    "Inflater",
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

DEFAULT_MAX_INFLATED_LENGTH = 256 * 1024 * 1024
"""Cap on an inflated Deflated Explicit VR LE data set: ``AE.maximum_dataset_size``'s default.

An association passes its AE's ``maximum_dataset_size``, the cap of a plain data set.
"""
DEFAULT_MAX_INFLATE_RATIO = 200
"""Most inflated bytes per deflated byte, judged past ``_RATIO_FREE`` bytes (zip bombs).

Deflate reaches about 1000:1 on runs of zeros; DICOM attributes rarely pass 20:1.
"""
_RATIO_FREE = 1 << 20
INFLATE_STEP = 1 << 20
"""Most bytes one ``Inflater.step`` produces (a few ms of work: the loop runs between)."""


MAX_NESTING = _fastds.MAX_DEPTH
"""Deepest sequence nesting any decoded data set has (fastds's limit, kept on every path)."""


def refusal_status(exc: DatasetDecodeError) -> int:
    """The DIMSE-N status for a request whose data set cannot be decoded.

    0x0213 (resource limitation, PS3.7 C.4) for a limit of ours (inflated size or
    ratio, nesting depth); else 0x0110 (processing failure).
    """
    if isinstance(exc, InflateLimitError | DatasetTooDeepError):
        return RESOURCE_LIMITATION
    return PROCESSING_FAILURE


class Inflated(bytes):
    """A deflated data set already inflated (``decode_dataset`` does not inflate it again)."""

    __slots__ = ()


class Inflater:
    """Raw-deflate inflation in bounded steps, refused as soon as a limit is passed.

    Each :meth:`step` produces at most ``INFLATE_STEP`` bytes, so memory never passes
    ``max_length`` (plus one step) and a caller can yield to its event loop between
    steps. Bytes after the end of the deflate stream are ignored, as before.
    """

    __slots__ = ("_data", "_inflater", "_limit", "_out", "_ratio", "_tail", "done")

    def __init__(self, data: bytes | bytearray | memoryview, *, max_length: int,
                 max_ratio: int | None = DEFAULT_MAX_INFLATE_RATIO) -> None:
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._tail: bytes | bytearray | memoryview = data
        self._data = len(data) if not isinstance(data, memoryview) else data.nbytes
        self._limit = max_length
        self._ratio = max_ratio
        self._out = bytearray()
        self.done = False

    def step(self) -> bool:
        """Inflate up to ``INFLATE_STEP`` more bytes; True once the stream is whole."""
        inflater = self._inflater
        try:
            # (never more than one byte past the cap: enough to know it is passed)
            room = self._limit - len(self._out) + 1
            chunk = inflater.decompress(self._tail, room if room < INFLATE_STEP else INFLATE_STEP)
        except zlib.error as exc:
            raise DatasetDecodeError(f"bad deflate stream: {exc}") from exc
        self._tail = inflater.unconsumed_tail
        out = self._out
        out += chunk
        size = len(out)
        if size > self._limit:
            self._out = bytearray()
            raise InflateLimitError(f"inflated data set exceeds {self._limit} bytes")
        ratio = self._ratio
        if ratio is not None and size > _RATIO_FREE and size > ratio * self._data:
            self._out = bytearray()
            raise InflateLimitError(
                f"deflated data set of {self._data} bytes inflates more than {ratio}:1"
            )
        if inflater.eof or (not self._tail and len(chunk) < (room if room < INFLATE_STEP
                                                              else INFLATE_STEP)):
            self.done = True
        return self.done

    def result(self, kind: type[bytes] = bytes) -> bytes:
        """The inflated bytes, as ``kind`` (once :meth:`step` has returned True)."""
        out, self._out = self._out, bytearray()
        return kind(out)


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
        if len(raw) & 1:  # a PDV's value is even (PS3.8 9.3.5.1): one NULL byte after
            raw += b"\x00"  # the stream's end, which inflating ignores
    return raw


def decode_dataset(
    data: bytes | bytearray | memoryview,
    transfer_syntax_uid: str,
    *,
    max_inflated_length: int = DEFAULT_MAX_INFLATED_LENGTH,
    max_inflate_ratio: int | None = DEFAULT_MAX_INFLATE_RATIO,
) -> Dataset:
    """Decode a data set (no preamble, no file meta) from ``data``.

    Empty ``data`` gives an empty Dataset. A memoryview is copied once into the
    reader. A deflated data set is inflated under ``max_inflated_length`` and
    ``max_inflate_ratio`` (None: no ratio limit), unless it is :class:`Inflated`
    already. Raises UnsupportedTransferSyntaxError or DatasetDecodeError
    (InflateLimitError past a limit).
    """
    implicit, little, deflated = (
        _SYNTAXES.get(transfer_syntax_uid) or _syntax(transfer_syntax_uid)
    )
    raw: bytes | bytearray | memoryview = data
    if deflated and type(data) is not Inflated:
        inflater = Inflater(data, max_length=max_inflated_length, max_ratio=max_inflate_ratio)
        while not inflater.step():
            pass
        raw = inflater.result()
    if little:
        # fastds builds the Dataset pydicom would; None = a case it leaves to pydicom,
        # and on bytes it rejects pydicom decides too (it reads some leniently), but
        # for a data set cut short (a value or item past the end), which it refuses
        try:
            fast = _fastds.try_decode(raw, implicit)
        except DatasetTruncatedError:
            raise  # pydicom would read the cut value as if whole
        except DatasetDecodeError:
            fast = None
        if fast is not None:
            return fast
    try:
        ds = read_dataset(io.BytesIO(raw), implicit, little)
        _check_nesting(ds)
    except DatasetDecodeError:
        raise
    except RecursionError as exc:  # nested far past MAX_NESTING
        raise DatasetTooDeepError(f"cannot decode data set: {exc}") from exc
    except Exception as exc:  # pydicom raises many types; re-typed here
        raise DatasetDecodeError(f"cannot decode data set: {exc}") from exc
    return ds


def _check_nesting(ds: Dataset) -> None:
    """Raise DatasetTooDeepError if sequences in ``ds`` nest deeper than MAX_NESTING.

    For what pydicom decoded (fastds keeps the limit itself): without it a data set
    fastds refuses would be read, stored, and fail later (to_json/from_json recurse).
    Walks iteratively; only sequences are converted (pydicom reads them lazily).
    """
    stack = [(ds, 0)]
    while stack:
        current, depth = stack.pop()
        for elem in current.elements():
            vr = elem.VR
            if vr is None:  # implicit VR, not yet converted
                try:
                    vr = dictionary_VR(elem.tag)
                except KeyError:
                    continue
            if vr != "SQ":
                continue
            if depth >= MAX_NESTING:
                raise DatasetTooDeepError(
                    f"cannot decode data set: sequences nested deeper than {MAX_NESTING}"
                )
            for item in current[elem.tag].value or ():
                stack.append((item, depth + 1))

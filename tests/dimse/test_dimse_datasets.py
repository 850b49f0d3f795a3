"""The pydicom bridge: encode/decode in the four uncompressed transfer syntaxes."""

from __future__ import annotations

import zlib

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from aiodimse.datasets import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    SUPPORTED_TRANSFER_SYNTAXES,
    DatasetDecodeError,
    DatasetEncodeError,
    DatasetError,
    UnsupportedTransferSyntaxError,
    decode_dataset,
    encode_dataset,
)
from aiodimse.errors import AiodimseError

ALL = sorted(SUPPORTED_TRANSFER_SYNTAXES)


def storage_commitment_request() -> Dataset:
    ds = Dataset()
    ds.TransactionUID = "1.2.3.4.5.6"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7"
    ds.ReferencedSOPSequence = Sequence([item, item])
    ds.PatientName = "Doe^Jane"
    ds.Rows = 512
    ds.NumberOfFrames = "3"
    ds.PixelSpacing = [0.5, 0.25]
    ds.add_new(0x00091001, "LO", "private")
    return ds


@pytest.mark.parametrize("syntax", ALL)
def test_round_trip(syntax: str) -> None:
    original = storage_commitment_request()
    data = encode_dataset(original, syntax)
    decoded = decode_dataset(memoryview(data), syntax)
    assert decoded.TransactionUID == "1.2.3.4.5.6"
    assert decoded.ReferencedSOPSequence[1].ReferencedSOPInstanceUID == "1.2.3.4.5.6.7"
    assert decoded.PatientName == "Doe^Jane"
    assert decoded.Rows == 512
    assert decoded.PixelSpacing == [0.5, 0.25]
    assert encode_dataset(decoded, syntax) == data
    assert len(zlib.decompress(data, -15)) % 2 == 0 if syntax.endswith("99") else len(data) % 2 == 0


def test_encodings_differ_as_expected() -> None:
    ds = Dataset()
    ds.Rows = 1
    assert encode_dataset(ds, IMPLICIT_VR_LITTLE_ENDIAN) == bytes.fromhex("28001000020000000100")
    assert encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN) == bytes.fromhex("28001000555302000100")
    assert encode_dataset(ds, EXPLICIT_VR_BIG_ENDIAN) == bytes.fromhex("00280010555300020001")
    deflated = encode_dataset(ds, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    assert zlib.decompress(deflated, -15) == encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN)
    assert encode_dataset(ds, IMPLICIT_VR_LITTLE_ENDIAN + "\x00") == encode_dataset(
        ds, IMPLICIT_VR_LITTLE_ENDIAN
    )


@pytest.mark.parametrize("syntax", ALL)
def test_empty_bytes_give_empty_dataset(syntax: str) -> None:
    data = encode_dataset(Dataset(), syntax)
    assert decode_dataset(data, syntax) == Dataset()


def test_unknown_transfer_syntax() -> None:
    with pytest.raises(UnsupportedTransferSyntaxError) as info:
        decode_dataset(b"", "1.2.840.10008.1.2.4.50")
    assert isinstance(info.value, DatasetError) and isinstance(info.value, AiodimseError)
    with pytest.raises(UnsupportedTransferSyntaxError):
        encode_dataset(Dataset(), "1.2.3")


def test_broken_bytes_raise_typed_error() -> None:
    # pydicom is lenient (a truncated value is read as truncated); an undefined-length
    # sequence without items is one thing it does refuse.
    broken = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff\x12\x34\x56\x78\x00\x00\x00\x00"
    with pytest.raises(DatasetDecodeError):
        decode_dataset(broken, EXPLICIT_VR_LITTLE_ENDIAN)
    with pytest.raises(DatasetDecodeError):
        decode_dataset(b"\xff\xff\xff", DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)


def test_inflation_cap() -> None:
    ds = Dataset()
    ds.add_new(0x00091010, "OB", b"\x00" * 100_000)
    data = encode_dataset(ds, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    assert len(data) < 1000
    with pytest.raises(DatasetDecodeError):
        decode_dataset(data, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, max_inflated_length=50_000)
    assert (
        len(decode_dataset(data, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)[0x00091010].value) == 100_000
    )


@pytest.mark.filterwarnings("ignore:A value of type:UserWarning")
def test_unencodable_dataset() -> None:
    ds = Dataset()
    ds.add_new(0x00280010, "US", "not a number")
    with pytest.raises(DatasetEncodeError):
        encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN)


def test_a_deflated_data_set_is_padded_to_even_length() -> None:
    """Some deflate streams are odd in length; DCMTK refuses an odd fragment, so the
    encoding ends with one NULL byte then, and still decodes to the same data set."""
    odd = even = None
    for n in range(1, 200):
        ds = Dataset()
        ds.PatientID = "X" * n
        ds.PatientName = f"Doe^{n}"
        data = encode_dataset(ds, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
        compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)  # (the default)
        plain = encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN)
        stream = compressor.compress(plain) + compressor.flush()
        assert len(data) % 2 == 0
        assert decode_dataset(data, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) == ds
        if len(stream) % 2:
            odd = data
        else:
            even = data
    assert odd is not None and even is not None  # both cases were met

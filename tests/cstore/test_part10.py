"""part10: the file meta and first UIDs read by hand agree with pydicom."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from aiodimse.part10 import first_uids, read_meta
from aiodimse.store_scp import read_identity

CT = "1.2.840.10008.5.1.4.1.1.2"
SYNTAXES = {ImplicitVRLittleEndian: (True, True), ExplicitVRLittleEndian: (False, True),
            ExplicitVRBigEndian: (False, False)}


def _dataset(instance: str = "1.2.3.45", *, sequence: bool = False) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    if sequence:  # (0008,0006), before the UIDs
        item = Dataset()
        item.CodeValue = "en"
        ds.LanguageCodeSequence = Sequence([item])
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = instance
    ds.PatientName = "Doe^Jane"
    ds.BitsAllocated = 16
    ds.PixelData = b"\0" * 64
    return ds


def _encode(ds: Dataset, syntax: str, *, undefined: bool = False) -> bytes:
    implicit, little = SYNTAXES[syntax]
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    if undefined:
        ds["LanguageCodeSequence"].is_undefined_length = True
    write_dataset(fp, ds)
    return fp.getvalue()


@pytest.mark.parametrize("syntax", list(SYNTAXES))
@pytest.mark.parametrize("instance", ["1.2.3.4", "1.2.3.45"])
def test_first_uids_are_the_data_sets(syntax: str, instance: str) -> None:
    data = _encode(_dataset(instance, sequence=True), syntax)
    class_uid, instance_uid = first_uids(io.BytesIO(data), *SYNTAXES[syntax]) or (None, None)
    assert class_uid is not None and instance_uid is not None
    assert class_uid.rstrip(b"\0").decode() == CT
    assert instance_uid.rstrip(b"\0").decode() == instance
    assert read_identity(io.BytesIO(data), syntax) == (CT, instance)


@pytest.mark.parametrize("syntax", list(SYNTAXES))
def test_an_undefined_length_sequence_first_is_left_to_pydicom(syntax: str) -> None:
    data = _encode(_dataset(sequence=True), syntax, undefined=True)
    assert first_uids(io.BytesIO(data), *SYNTAXES[syntax]) is None
    assert read_identity(io.BytesIO(data), syntax) == (CT, "1.2.3.45")


def test_implicit_data_on_an_explicit_context_is_left_to_pydicom() -> None:
    data = _encode(_dataset(), ImplicitVRLittleEndian)
    assert first_uids(io.BytesIO(data), False, True) is None
    assert read_identity(io.BytesIO(data), ExplicitVRLittleEndian) == (CT, "1.2.3.45")


def test_missing_uids_and_cut_elements() -> None:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    data = _encode(ds, ExplicitVRLittleEndian)
    assert first_uids(io.BytesIO(data), False, True) == (None, None)
    assert read_identity(io.BytesIO(b""), ExplicitVRLittleEndian) == (None, None)
    whole = _encode(_dataset(), ExplicitVRLittleEndian)
    cut = whole[:whole.index(b"1.2.3.45") + 3]
    for short in (cut, whole[:5]):
        with pytest.raises(ValueError, match="cut short"):
            first_uids(io.BytesIO(short), False, True)


@pytest.mark.parametrize("syntax", list(SYNTAXES))
def test_read_meta_is_pydicoms(tmp_path: Path, syntax: str) -> None:
    ds = _dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    meta = dcmread(path).file_meta
    with path.open("rb") as fp:
        found = read_meta(fp)
        assert found is not None
        offset, values = found
        assert fp.tell() == offset
        assert fp.read() == _encode(_dataset(), syntax)
    assert values[0x0010] == syntax
    assert values[0x0002] == CT
    assert values[0x0003] == meta.MediaStorageSOPInstanceUID
    assert values[0x0012] == meta.ImplementationClassUID
    (tmp_path / "no.dcm").write_bytes(b"\0" * 200)
    with (tmp_path / "no.dcm").open("rb") as fp:
        assert read_meta(fp) is None

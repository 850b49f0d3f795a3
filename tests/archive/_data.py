"""Instances for the archive tests, made with pydicom."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT = str(ExplicitVRLittleEndian)


def instance(**attrs: Any) -> Dataset:
    """A small CT instance with fresh UIDs, ``attrs`` set over the defaults."""
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "PID1"
    ds.PatientName = "Doe^Jane"
    ds.StudyDate = "20240102"
    ds.Modality = "CT"
    ds.InstanceNumber = "1"
    ds.add_new(0x7FE00010, "OB", b"\x00\x01" * 32)  # Pixel Data
    for keyword, value in attrs.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def encode(ds: Dataset) -> bytes:
    """The bare data set, explicit VR little endian (as C-STORE carries it)."""
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, ds)
    return out.getvalue()


def part10(ds: Dataset, path: Path) -> Path:
    """``ds`` written as a Part 10 file at ``path``."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path

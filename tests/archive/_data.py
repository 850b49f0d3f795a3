"""Instances for the archive tests, made with pydicom."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from aiodimse.archive import QueryEngine, QueryModel
from aiodimse.store.interface import ArchiveIndex
from aiodimse.store.records import InstanceRecord

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT = str(ExplicitVRLittleEndian)
PAT = "1.2.826.0.1.3680043.10.8"


def record(n: int, study: int, series: int, **attrs: str) -> InstanceRecord:
    """Instance ``n`` of series ``series`` of study ``study`` (patient PID0 or PID1 by
    the study's parity), as the indexer would make it; series 3 is MR."""
    base = {"PatientID": f"PID{study % 2}", "PatientName": f"Name{study % 2}^Given",
            "StudyInstanceUID": f"{PAT}.1.{study}", "SeriesInstanceUID": f"{PAT}.2.{series}",
            "StudyDate": f"2024010{study}", "StudyTime": "101500", "Modality": "CT",
            "SeriesNumber": str(series), "InstanceNumber": str(n),
            "SOPInstanceUID": f"{PAT}.3.{n}"}
    return InstanceRecord(sop_class_uid=MR if series == 3 else CT,
                          sop_instance_uid=f"{PAT}.3.{n}", path=f"/archive/{n}.dcm",
                          transfer_syntax="1.2.840.10008.1.2.1", size=100, mtime_ns=0,
                          attrs=base | attrs)


def identifier(**keys: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


async def find(index: ArchiveIndex, model: QueryModel, ds: Dataset,
               **kw: Any) -> list[Dataset]:
    return [r async for r in QueryEngine(index, **kw).find(model, ds)]


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

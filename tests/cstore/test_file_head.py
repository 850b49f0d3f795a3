"""store_scp.file_head: the bytes pydicom writes for file_meta_for's meta."""

from __future__ import annotations

from io import BytesIO
from types import SimpleNamespace

import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info

from aiodimse.dimse.messages import CStoreRQ
from aiodimse.store_scp import file_head, file_meta_for


def meta_bytes(meta: object) -> bytes:
    """The group 0002 elements after the group length, as pydicom writes them."""
    fp = DicomBytesIO()
    write_file_meta_info(fp, meta, enforce_standard=False)  # type: ignore[arg-type]
    return fp.getvalue()[12:]


def _pydicom_head(request: CStoreRQ, context: object, ae: object) -> bytes:
    fp = DicomBytesIO()
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, file_meta_for(request, context, ae),  # type: ignore[arg-type]
                         enforce_standard=True)
    return fp.getvalue()


@pytest.mark.parametrize("version", ["AIODIMSE", "ODD_NAME_15CHRS"])
@pytest.mark.parametrize("instance", ["1.2.3.4", "1.2.3.45"])  # even and odd lengths
@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
def test_file_head_is_what_pydicom_writes(version: str | None, instance: str,
                                          syntax: str) -> None:
    request = CStoreRQ(MessageID=1, Priority=0, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
                       AffectedSOPInstanceUID=instance)
    context = SimpleNamespace(transfer_syntax=syntax)
    ae = SimpleNamespace(implementation_class_uid="1.2.826.0.1.3680043.9.3811.1.0",
                         implementation_version_name=version)
    assert file_head(request, context, ae) == _pydicom_head(request, context, ae)  # type: ignore[arg-type]


def test_no_version_name_writes_none() -> None:
    """(pydicom would put its own version name beside our class UID.)"""
    request = CStoreRQ(MessageID=1, Priority=0, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.2",
                       AffectedSOPInstanceUID="1.2.3")
    context = SimpleNamespace(transfer_syntax="1.2.840.10008.1.2")
    for version in (None, ""):
        ae = SimpleNamespace(implementation_class_uid="1.2.3.4",
                             implementation_version_name=version)
        meta = dcmread(BytesIO(file_head(request, context, ae))).file_meta  # type: ignore[arg-type]
        assert "ImplementationVersionName" not in meta
        assert meta.ImplementationClassUID == "1.2.3.4"
        assert meta.MediaStorageSOPInstanceUID == "1.2.3"
        assert meta.FileMetaInformationGroupLength == len(meta_bytes(meta))

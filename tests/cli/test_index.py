"""``aiodimse index``: nothing passed over without a word, files without a preamble read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from aiodimse.store import DB_FILENAME
from aiodimse.store.index import ScanReport, read_uids, scan
from aiodimse.store.sqlite import SQLiteDatabase

CT = "1.2.840.10008.5.1.4.1.1.2"


def _instance() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = str(generate_uid())
    ds.PatientID = "P1"
    return ds


def _with_preamble(path: Path) -> str:
    ds = _instance()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return str(ds.SOPInstanceUID)


def _bare(path: Path, *, implicit: bool) -> str:
    """An old archive's file: the data set alone, no preamble, no "DICM", no meta."""
    ds = _instance()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, implicit_vr=implicit, little_endian=True)
    assert path.read_bytes()[128:132] != b"DICM"
    return str(ds.SOPInstanceUID)


def _archive(top: Path) -> list[str]:
    uids = [_with_preamble(top / f"a{i}.dcm") for i in range(4)]
    uids.append(_bare(top / "old" / "implicit", implicit=True))
    uids.append(_bare(top / "old" / "explicit", implicit=False))
    (top / "README.txt").write_text("not DICOM at all\n")
    no_uids = Dataset()
    no_uids.PatientID = "P1"
    no_uids.file_meta = FileMetaDataset()
    no_uids.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    no_uids.preamble = b"\0" * 128
    no_uids.save_as(top / "no-uids.dcm", implicit_vr=False, little_endian=True)
    assert (top / "no-uids.dcm").read_bytes()[128:132] == b"DICM"
    return uids


def test_files_without_a_preamble_are_read(tmp_path: Path) -> None:
    implicit = _bare(tmp_path / "i", implicit=True)
    explicit = _bare(tmp_path / "e", implicit=False)
    assert read_uids(tmp_path / "i") == (CT, implicit)
    assert read_uids(tmp_path / "e") == (CT, explicit)


def test_the_scan_reports_what_it_passed_over_and_why(tmp_path: Path) -> None:
    uids = _archive(tmp_path / "archive")
    report = ScanReport()
    found = list(scan([tmp_path / "archive", tmp_path / "nowhere"], report))
    assert sorted(inst for _cls, inst, _path in found) == sorted(uids)
    assert report.indexed == 6 and report.files == 8
    assert report.skipped == {
        "not DICOM": [str(tmp_path / "archive" / "README.txt")],
        "no SOP Class or Instance UID (not an instance)": [
            str(tmp_path / "archive" / "no-uids.dcm")],
    }
    assert report.missing == [str(tmp_path / "nowhere")]
    assert not report.complete
    assert report.summary() == (
        "indexed 6, skipped 2 (1 no SOP Class or Instance UID (not an instance), "
        f"1 not DICOM); not found: {tmp_path / 'nowhere'}"
    )


def _index(data: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiodimse", "index", "--data", str(data), *map(str, paths)],
        capture_output=True, text=True, timeout=60, check=False)


def test_index_prints_counts_and_exits_0_for_a_folder(tmp_path: Path) -> None:
    _archive(tmp_path / "archive")
    SQLiteDatabase.in_directory(tmp_path / "data").close()
    proc = _index(tmp_path / "data", tmp_path / "archive")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("indexed 6, skipped 2 (")
    store = SQLiteDatabase.in_directory(tmp_path / "data")
    assert store.count_instances() == 6
    store.close()


def test_a_missing_path_or_a_named_non_dicom_file_exits_1(tmp_path: Path) -> None:
    SQLiteDatabase.in_directory(tmp_path / "data").close()
    (tmp_path / "notes.txt").write_text("hello")
    missing = _index(tmp_path / "data", tmp_path / "typo")
    assert missing.returncode == 1
    assert f"not found: {tmp_path / 'typo'}" in missing.stdout
    named = _index(tmp_path / "data", tmp_path / "notes.txt")
    assert named.returncode == 1
    assert "skipped 1 (1 not DICOM)" in named.stdout


def test_a_mistyped_data_directory_is_refused_not_created(tmp_path: Path) -> None:
    _archive(tmp_path / "archive")
    proc = _index(tmp_path / "dtaa", tmp_path / "archive")
    assert proc.returncode == 1
    assert "no aiodimse database in" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "dtaa").exists()
    assert not (tmp_path / "dtaa" / DB_FILENAME).exists()

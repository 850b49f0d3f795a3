"""``aiodimse store``, ``find``, ``get`` and ``move`` against a real ``aiodimse serve``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from aiodimse.cli.store_tool import MAX_CONTEXTS, Instance, plan

from .conftest import StartServe

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


def write(folder: Path, study: str, series: str, *, sop_class: str = CT,
          patient: str = "P1", name: str = "DOE^JOHN",
          syntax: str = ExplicitVRLittleEndian) -> str:
    uid = str(generate_uid())
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientID = patient
    ds.PatientName = name
    ds.Modality = "CT"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = syntax
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(folder / f"{uid}.dcm", enforce_file_format=True)
    return uid


def tool(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiodimse", *argv], capture_output=True,
                          text=True, timeout=timeout, check=False)


async def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(tool, *argv)


def test_over_128_contexts_make_several_associations() -> None:
    instances = [Instance(f"{i}.dcm", f"1.2.3.{i}", "1.2.3", ExplicitVRLittleEndian)
                 for i in range(MAX_CONTEXTS + 5)]
    instances.append(Instance("again.dcm", "1.2.3.0", "1.2.3", ExplicitVRLittleEndian))
    batches = plan(instances)
    assert [len(c) for c, _ in batches] == [MAX_CONTEXTS, 5]
    assert [len(i) for _, i in batches] == [MAX_CONTEXTS + 1, 5]  # same pair, same batch
    assert batches[0][0][0].transfer_syntaxes[0] == ExplicitVRLittleEndian


async def test_store_files_and_folders_then_commit(serve: StartServe, tmp_path: Path) -> None:
    srv = await serve().ready()
    study, series = str(generate_uid()), str(generate_uid())
    files = tmp_path / "in"
    uids = [write(files, study, series), write(files / "deeper" / "still", study, series),
            write(files, study, series, syntax=ImplicitVRLittleEndian, sop_class=MR)]
    (files / "notes.txt").write_text("not DICOM")
    # (scanned by their file meta and first elements, not parsed whole)
    (files / "cut.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x40")
    (files / "no-syntax.dcm").write_bytes(  # a meta without a Transfer Syntax UID
        b"\0" * 128 + b"DICM" + b"\x02\x00\x02\x00UI\x06\x001.2.3\0"
        + b"\x08\x00\x16\x00UI\x06\x001.2.3\0")
    done = await run("store", "127.0.0.1", str(srv.port), "-aec", "AIODIMSE", str(files))
    assert done.returncode == 1, done.stdout + done.stderr  # a file was skipped
    assert ("stored 3, failed 0, skipped 3 (2 not DICOM, 1 no SOP Class, SOP Instance UID "
            "or transfer syntax)") in done.stdout, done.stdout
    for uid in uids:
        assert (srv.data / "archive" / study / series / f"{uid}.dcm").is_file()

    again = await run("store", "127.0.0.1", str(srv.port), "-aec", "AIODIMSE", "--commit",
                      "--json", str(files / "deeper"), str(files / f"{uids[0]}.dcm"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert '"summary": "stored 2, failed 0, skipped 0"' in again.stdout
    assert '"event_type": 1' in again.stdout


async def test_store_without_a_peer_is_exit_3(tmp_path: Path) -> None:
    write(tmp_path, str(generate_uid()), str(generate_uid()))
    from ._serve import free_port
    done = await run("store", "127.0.0.1", str(free_port()), "--timeout", "3", str(tmp_path))
    assert done.returncode == 3
    assert "connection refused" in done.stderr


async def test_find_get_and_move(serve: StartServe, tmp_path: Path) -> None:
    dest = await serve("-aet", "DEST", data=tmp_path / "dest").ready()
    srv = await serve("--peer", f"DEST@127.0.0.1:{dest.port}").ready()
    study, series = str(generate_uid()), str(generate_uid())
    files = tmp_path / "in"
    uids = {write(files, study, series) for _ in range(2)}
    write(files, str(generate_uid()), str(generate_uid()), patient="P2", name="ROE^JANE")
    stored = await run("store", "127.0.0.1", str(srv.port), str(files))
    assert stored.returncode == 0, stored.stdout + stored.stderr

    found = await run("find", "127.0.0.1", str(srv.port), "-S", "-L", "STUDY",
                      "-k", "PatientName=DOE*", "-k", "StudyInstanceUID",
                      "-k", "NumberOfStudyRelatedInstances", "--json")
    assert found.returncode == 0, found.stderr
    matches = [Dataset.from_json(m) for m in json.loads(found.stdout)["matches"]]
    assert [(m.StudyInstanceUID, int(m.NumberOfStudyRelatedInstances)) for m in matches] == [
        (study, 2)]
    patients = await run("find", "127.0.0.1", str(srv.port), "-P", "-L", "PATIENT",
                         "-k", "PatientID")
    assert patients.returncode == 0 and "C-FIND: 2 matches" in patients.stdout
    refused = await run("find", "127.0.0.1", str(srv.port), "-S", "-L", "PATIENT")
    assert refused.returncode == 2 and "0xA900" in refused.stdout

    out = tmp_path / "got"
    got = await run("get", "127.0.0.1", str(srv.port), "-L", "SERIES", "-k",
                    f"StudyInstanceUID={study}", "-k", f"SeriesInstanceUID={series}",
                    "--output-dir", str(out))
    assert got.returncode == 0, got.stdout + got.stderr
    assert "completed 2, failed 0" in got.stdout
    assert {p.stem for p in out.iterdir()} == uids
    assert {str(dcmread(p).SOPInstanceUID) for p in out.iterdir()} == uids

    moved = await run("move", "127.0.0.1", str(srv.port), "--dest", "DEST", "-k",
                      f"StudyInstanceUID={study}", "--json")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert json.loads(moved.stdout)["completed"] == 2
    for uid in uids:
        assert (dest.data / "archive" / study / series / f"{uid}.dcm").is_file()
    nowhere = await run("move", "127.0.0.1", str(srv.port), "--dest", "NOBODY", "-k",
                        f"StudyInstanceUID={study}")
    assert nowhere.returncode == 2 and "0xA801" in nowhere.stdout


async def test_a_compressed_instance_is_stored_as_sent(serve: StartServe,
                                                       tmp_path: Path) -> None:
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    srv = await serve().ready()
    study, series = str(generate_uid()), str(generate_uid())
    uid = write(tmp_path / "in", study, series, syntax=JPEGBaseline8Bit)
    path = tmp_path / "in" / f"{uid}.dcm"
    ds = dcmread(path)
    frame = b"\xff\xd8\xff\xe0" + bytes(range(200)) + b"\xff\xd9"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.SamplesPerPixel = 1
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    done = await run("store", "127.0.0.1", str(srv.port), str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    stored = dcmread(srv.data / "archive" / study / series / f"{uid}.dcm")
    assert stored.file_meta.TransferSyntaxUID == JPEGBaseline8Bit  # not transcoded
    assert stored.PixelData == ds.PixelData

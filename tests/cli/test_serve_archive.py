"""The real ``aiodimse serve`` as an archive: C-STORE in, commitment, C-FIND, C-GET, C-MOVE."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from aiodimse import AE, evt
from aiodimse.presentation import build_role

from .conftest import StartServe

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
PATIENT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"


def instance(study: str, series: str, patient: str = "P1", name: str = "DOE^JOHN"
             ) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientID = patient
    ds.PatientName = name
    ds.StudyDate = "20240102"
    ds.Modality = "CT"
    ds.InstanceNumber = 1
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def scu(*extra: str) -> AE:
    ae = AE("MODALITY")
    ae.dimse_timeout = ae.acse_timeout = 10
    for uid in (CT, *extra):
        ae.add_requested_context(uid)
    return ae


async def store(port: int, datasets: list[Dataset]) -> list[int]:
    async with scu().associate("127.0.0.1", port, ae_title="AIODIMSE") as assoc:
        return [int((await assoc.send_c_store(ds)).Status) for ds in datasets]


def run_tool(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiodimse", *argv], capture_output=True,
                          text=True, timeout=timeout, check=False)


async def test_stored_instances_are_filed_indexed_and_committed_at_once(
        serve: StartServe, tmp_path: Path) -> None:
    srv = await serve().ready()
    assert "services: verification, storage_commitment, mpps, storage, query_retrieve" \
        in srv.log()
    study, series = generate_uid(), generate_uid()
    sent = [instance(study, series) for _ in range(3)]
    assert await store(srv.port, sent) == [0, 0, 0]
    for ds in sent:  # the documented layout, the data set as sent
        path = srv.data / "archive" / study / series / f"{ds.SOPInstanceUID}.dcm"
        assert dcmread(path).PatientName == "DOE^JOHN"
    assert not list((srv.data / "archive" / ".incoming").iterdir())
    uids = [f"-u{CT}:{ds.SOPInstanceUID}" for ds in sent]
    done = await asyncio.to_thread(run_tool, "commit", "127.0.0.1", str(srv.port),
                                   "-aec", "AIODIMSE", *uids, "--wait", "20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 committed, 0 failed" in done.stdout


async def test_refused_instances_leave_nothing(serve: StartServe) -> None:
    srv = await serve().ready()
    no_study = instance(generate_uid(), generate_uid())
    del no_study.StudyInstanceUID
    async with scu().associate("127.0.0.1", srv.port, ae_title="AIODIMSE") as assoc:
        assert (await assoc.send_c_store(no_study)).Status == 0xA900  # the writer's
        # the command names another instance than the data set (the library's screen)
        other = instance(generate_uid(), generate_uid())
        rsp = await assoc._request(  # a raw request: send_c_store names the right one
            assoc._store_context(CT, ExplicitVRLittleEndian)[0],
            _command(CT, str(generate_uid())), other)
        assert rsp.message.Status == 0xA900
        good = instance(generate_uid(), generate_uid())
        assert (await assoc.send_c_store(good)).Status == 0  # the association kept
    archive = srv.data / "archive"
    assert sorted(p.name for p in archive.iterdir()) == [".incoming", good.StudyInstanceUID]
    assert not list((archive / ".incoming").iterdir())


def _command(sop_class: str, sop_instance: str) -> object:
    from aiodimse.dimse.messages import CStoreRQ
    from aiodimse.scu import _Command

    return _Command(lambda i: CStoreRQ(MessageID=i, AffectedSOPClassUID=sop_class,
                                       AffectedSOPInstanceUID=sop_instance, Priority=0))


async def test_duplicates_keep_the_first_when_configured(serve: StartServe) -> None:
    srv = await serve("--duplicates", "keep").ready()
    first = instance(generate_uid(), generate_uid(), name="FIRST")
    again = instance(first.StudyInstanceUID, first.SeriesInstanceUID, name="SECOND")
    again.SOPInstanceUID = first.SOPInstanceUID
    assert await store(srv.port, [first, again]) == [0, 0]
    path = (srv.data / "archive" / first.StudyInstanceUID / first.SeriesInstanceUID
            / f"{first.SOPInstanceUID}.dcm")
    assert dcmread(path).PatientName == "FIRST"
    assert srv.stop() == 0
    assert "stored=2 stored_again=1 store_refused=0" in srv.log()  # the final summary


async def test_find_get_and_move_what_was_stored(serve: StartServe, tmp_path: Path) -> None:
    dest = await serve("-aet", "DEST", data=tmp_path / "dest").ready()
    srv = await serve("--peer", f"DEST@127.0.0.1:{dest.port}").ready()
    study, series = generate_uid(), generate_uid()
    sent = [instance(study, series) for _ in range(2)]
    other = instance(generate_uid(), generate_uid(), patient="P2", name="ROE^JANE")
    assert await store(srv.port, [*sent, other]) == [0, 0, 0]

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.PatientName = "doe*"
    query.NumberOfStudyRelatedInstances = ""
    async with scu(STUDY_FIND, PATIENT_FIND, STUDY_MOVE).associate(
            "127.0.0.1", srv.port, ae_title="AIODIMSE") as assoc:
        answers = [(int(s.Status), i) async for s, i in assoc.send_c_find(query, STUDY_FIND)]
        assert [s for s, _ in answers] == [0xFF00, 0x0000]
        match = answers[0][1]
        assert match is not None and match.StudyInstanceUID == study
        assert int(match.NumberOfStudyRelatedInstances) == 2
        bad = Dataset()
        bad.QueryRetrieveLevel = "PATIENT"  # not a Study Root level
        assert [int(s.Status) async for s, _ in assoc.send_c_find(bad, STUDY_FIND)] == [0xA900]

        move = Dataset()
        move.QueryRetrieveLevel = "STUDY"
        move.StudyInstanceUID = study
        finals = [s async for s, _ in assoc.send_c_move(move, "DEST", STUDY_MOVE)]
        assert int(finals[-1].Status) == 0 and finals[-1].NumberOfCompletedSuboperations == 2
        unknown = [int(s.Status) async for s, _ in assoc.send_c_move(move, "NOBODY",
                                                                      STUDY_MOVE)]
        assert unknown == [0xA801]
    for ds in sent:
        assert (dest.data / "archive" / study / series / f"{ds.SOPInstanceUID}.dcm").is_file()

    received: list[str] = []

    async def on_store(event: object) -> int:
        received.append(str(event.dataset.SOPInstanceUID))  # type: ignore[attr-defined]
        return 0

    ae = scu(STUDY_GET)
    async with ae.associate("127.0.0.1", srv.port, ae_title="AIODIMSE",
                            ext_neg=[build_role(CT, scp_role=True)],
                            evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
        get = Dataset()
        get.QueryRetrieveLevel = "SERIES"
        get.StudyInstanceUID = study
        get.SeriesInstanceUID = series
        results = [s async for s, _ in assoc.send_c_get(get, STUDY_GET)]
        assert int(results[-1].Status) == 0
    assert sorted(received) == sorted(str(ds.SOPInstanceUID) for ds in sent)

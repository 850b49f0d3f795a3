"""The archive index, the same on every backend: response identifiers as asked,
matching (single, wildcard, range, lists, multi-valued keys), lower levels,
retrieval lists, removal pruning the levels above, matches streamed in bounded
batches, and several writers (nodes) indexing one study at once."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydicom.sequence import Sequence

from aiodimse.archive import (
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    STUDY_ROOT_FIND,
    STUDY_ROOT_MOVE,
    QueryEngine,
    model_for,
)
from aiodimse.observe import Observer
from aiodimse.store.archive_sql import FIRST_BATCH, MAX_BATCH
from aiodimse.store.interface import Store

from ..archive._data import CT, MR, PAT, find, identifier, record
from .conftest import OpenStore


@pytest.fixture
async def store(stores: OpenStore) -> AsyncIterator[Store]:
    s = stores()
    # study 1 (PID1): series 1 (2 CT), series 3 (1 MR, Modality MR); study 2 (PID0): series 2
    await s.add_records([record(1, 1, 1), record(2, 1, 1), record(3, 1, 3, Modality="MR"),
                         record(4, 2, 2, PatientName="Ünïcode^Ñame")], 1.0)
    yield s


async def test_the_response_identifier(store: Store) -> None:
    ds = identifier(QueryRetrieveLevel="STUDY", PatientName="name1*", ModalitiesInStudy="",
             NumberOfStudyRelatedSeries="", NumberOfStudyRelatedInstances="",
             SOPClassesInStudy="", StudyDate="", OtherPatientIDs="XYZ",
             ReferencedStudySequence=Sequence([identifier(ReferencedSOPClassUID=CT)]))
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.add_new(0x00091010, "LO", "private")
    (r,) = await find(store, STUDY_ROOT_FIND, ds, retrieve_aet="ARCHIVE")
    assert r.QueryRetrieveLevel == "STUDY"
    assert r.PatientName == "Name1^Given"  # PN matched ignoring case
    assert r.StudyInstanceUID == f"{PAT}.1.1"  # the level's unique key, not asked for
    assert list(r.ModalitiesInStudy) == ["CT", "MR"]
    assert (r.NumberOfStudyRelatedSeries, r.NumberOfStudyRelatedInstances) == (2, 3)
    assert list(r.SOPClassesInStudy) == [CT, MR]
    assert r.StudyDate == "20240101"
    assert r["OtherPatientIDs"].value in (None, "")  # unknown key: zero-length
    assert r[0x00091010].value in (None, "")
    assert len(r.ReferencedStudySequence) == 0
    assert r.RetrieveAETitle == "ARCHIVE"
    assert r.SpecificCharacterSet == "ISO_IR 100"  # ASCII answers in the asked set
    assert [e.keyword for e in r if e.keyword].count("PatientName") == 1


async def test_non_ascii_values_are_answered_in_utf8(store: Store) -> None:
    (r,) = await find(store, PATIENT_ROOT_FIND, identifier(QueryRetrieveLevel="PATIENT",
                                                      PatientID="PID0", PatientName=""))
    assert r.SpecificCharacterSet == "ISO_IR 192"
    assert str(r.PatientName) == "Ünïcode^Ñame"
    assert "RetrieveAETitle" not in r


@pytest.mark.parametrize(("keys", "want"), [
    ({"StudyDate": "20240101-20240101"}, {1}),
    ({"StudyDate": "-20240102"}, {1, 2}),
    ({"StudyDate": "20240102-"}, {2}),
    ({"StudyTime": "10-10"}, {1, 2}),  # 10:15 lies in the hour 10
    ({"StudyTime": "1016-"}, set()),
    ({"StudyInstanceUID": [f"{PAT}.1.2", f"{PAT}.1.9"]}, {2}),
    ({"ModalitiesInStudy": "MR"}, {1}),
    ({"ModalitiesInStudy": ["MR", "CT"]}, {1, 2}),
    ({"PatientName": "NAME?^*"}, {1}),
    ({"PatientID": "pid1"}, set()),  # LO is case-sensitive
    ({"PatientID": "*"}, {1, 2}),
])
async def test_study_matching(store: Store, keys: dict[str, Any], want: set[int]) -> None:
    found = await find(store, STUDY_ROOT_FIND, identifier(QueryRetrieveLevel="STUDY", **keys))
    assert {int(str(r.StudyInstanceUID).rsplit(".", 1)[1]) for r in found} == want


async def test_lower_levels(store: Store) -> None:
    series = await find(store, PATIENT_ROOT_FIND, identifier(
        QueryRetrieveLevel="SERIES", PatientID="PID1", StudyInstanceUID=f"{PAT}.1.1",
        Modality="", NumberOfSeriesRelatedInstances=""))
    assert sorted((r.Modality, r.NumberOfSeriesRelatedInstances) for r in series) == [
        ("CT", 2), ("MR", 1)]
    images = await find(store, STUDY_ROOT_FIND, identifier(
        QueryRetrieveLevel="IMAGE", StudyInstanceUID=f"{PAT}.1.1",
        SeriesInstanceUID=f"{PAT}.2.1", InstanceNumber="2", SOPClassUID="",
        AvailableTransferSyntaxUID=""))
    assert [(r.SOPInstanceUID, r.SOPClassUID, r.AvailableTransferSyntaxUID) for r in images] \
        == [(f"{PAT}.3.2", CT, "1.2.840.10008.1.2.1")]
    wrong_patient = await find(store, PATIENT_ROOT_FIND, identifier(
        QueryRetrieveLevel="STUDY", PatientID="PID0", StudyInstanceUID=f"{PAT}.1.1"))
    assert wrong_patient == []


async def test_retrieval(store: Store) -> None:
    engine = QueryEngine(store)
    study = engine.retrieval(STUDY_ROOT_MOVE, identifier(QueryRetrieveLevel="STUDY",
                                                  StudyInstanceUID=f"{PAT}.1.1",
                                                  PatientName="ignored"))
    assert await study.count() == 3
    assert sorted([(i.sop_instance_uid, i.path) async for i in study]) == [
        (f"{PAT}.3.{n}", f"/archive/{n}.dcm") for n in (1, 2, 3)]
    images = engine.retrieval(PATIENT_ROOT_GET, identifier(
        QueryRetrieveLevel="IMAGE", PatientID="PID1", StudyInstanceUID=f"{PAT}.1.1",
        SeriesInstanceUID=f"{PAT}.2.1", SOPInstanceUID=[f"{PAT}.3.2", f"{PAT}.3.4"]))
    assert [(i.sop_class_uid, i.sop_instance_uid, i.transfer_syntax) async for i in images] \
        == [(CT, f"{PAT}.3.2", "1.2.840.10008.1.2.1")]  # 3.4 is in another series
    assert model_for(STUDY_ROOT_MOVE.sop_class_uid) is STUDY_ROOT_MOVE
    assert model_for("1.2.3") is None


async def test_index_instance_says_where_the_instance_was(store: Store) -> None:
    """The archive writer's one call per instance: indexed at once, and the file
    it had before (None when new), so the writer can remove a replaced one."""
    new = record(50, 1, 1)
    assert await store.index_instance(new, 3.0) is None
    assert await store.archived_path(new.sop_instance_uid) == "/archive/50.dcm"
    moved = dataclasses.replace(record(50, 2, 2), path="/archive/elsewhere.dcm")
    assert await store.index_instance(moved, 4.0) == "/archive/50.dcm"
    assert await store.archived_path(new.sop_instance_uid) == "/archive/elsewhere.dcm"
    series = await find(store, STUDY_ROOT_FIND, identifier(
        QueryRetrieveLevel="SERIES", StudyInstanceUID=f"{PAT}.1.2", SeriesInstanceUID=""))
    assert sorted(r.SeriesInstanceUID for r in series) == [f"{PAT}.2.2"]
    assert await store.index_instance(moved, 5.0) == "/archive/elsewhere.dcm"


async def test_a_removed_instance_takes_its_empty_series_study_and_patient(
        store: Store) -> None:
    assert await store.archived_path(f"{PAT}.3.4") == "/archive/4.dcm"
    assert await store.remove_instance(f"{PAT}.3.4")
    assert not await store.remove_instance(f"{PAT}.3.4")
    assert await store.archived_path(f"{PAT}.3.4") is None
    patients = await find(store, PATIENT_ROOT_FIND, identifier(QueryRetrieveLevel="PATIENT",
                                                          PatientID=""))
    assert [r.PatientID for r in patients] == ["PID1"]
    assert await store.remove_instance(f"{PAT}.3.3")  # series 3 goes, study 1 stays
    found = await find(store, STUDY_ROOT_FIND, identifier(QueryRetrieveLevel="STUDY",
                                                    ModalitiesInStudy=""))
    assert [r.ModalitiesInStudy for r in found] == ["CT"]


async def test_a_reindexed_instance_moves_and_its_old_places_go(store: Store) -> None:
    """Indexed again under another series, study and patient: the latest record's
    attributes win, and the levels it left empty are gone."""
    await store.add_records([record(4, 5, 6, PatientID="PID9", PatientName="New^Name")], 2.0)
    patients = await find(store, PATIENT_ROOT_FIND, identifier(
        QueryRetrieveLevel="PATIENT", PatientID="", PatientName="",
        NumberOfPatientRelatedInstances=""))
    assert sorted((r.PatientID, str(r.PatientName), r.NumberOfPatientRelatedInstances)
                  for r in patients) == [("PID1", "Name1^Given", 3), ("PID9", "New^Name", 1)]
    studies = await find(store, STUDY_ROOT_FIND, identifier(QueryRetrieveLevel="STUDY",
                                                           StudyInstanceUID=""))
    assert sorted(r.StudyInstanceUID for r in studies) == [f"{PAT}.1.1", f"{PAT}.1.5"]
    assert await store.count_instances() == 4


async def test_a_value_with_a_nul_inside_is_indexed(store: Store) -> None:
    """A peer's string with a NUL inside (no valid DICOM string has one): the
    instance is indexed and found all the same (PostgreSQL keeps the text without
    the NUL), and a query value with one is answered, not failed."""
    await store.add_records([record(7, 7, 7, PatientName="Nul\x00^Inside",
                                    StudyDescription="A\x00B")], 2.0)
    (found,) = await find(store, STUDY_ROOT_FIND, identifier(
        QueryRetrieveLevel="STUDY", StudyInstanceUID=f"{PAT}.1.7", PatientName=""))
    assert str(found.PatientName).replace("\x00", "") == "Nul^Inside"
    assert await find(store, STUDY_ROOT_FIND, identifier(
        QueryRetrieveLevel="STUDY", StudyDescription="X\x00Y")) == []


@pytest.mark.parametrize("keys", [
    {"QueryRetrieveLevel": "STUDY", "PatientName": "", "PatientID": "", "ModalitiesInStudy": "",
     "NumberOfStudyRelatedSeries": "", "NumberOfStudyRelatedInstances": "",
     "SOPClassesInStudy": "", "StudyDate": "", "StudyTime": "", "AccessionNumber": "",
     "ReferringPhysicianName": "", "OtherPatientIDs": "X",
     "ReferencedStudySequence": Sequence()},
    {"QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": f"{PAT}.1.1",
     "SeriesInstanceUID": f"{PAT}.2.1", "InstanceNumber": "", "SOPClassUID": "",
     "AvailableTransferSyntaxUID": ""},
    {"QueryRetrieveLevel": "PATIENT", "PatientID": "", "PatientName": "",
     "NumberOfPatientRelatedStudies": ""},  # one is Ünïcode^Ñame: UTF-8
])
async def test_answers_hold_values_as_pydicom_converts_them(store: Store,
                                                           keys: dict[str, Any]) -> None:
    """The engine builds answers' elements without pydicom's per-value conversion: each
    value has the type and value pydicom's own decoding of the answer gives it, and the
    answer encodes to pydicom's bytes."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset
    from pydicom.filewriter import write_dataset

    from aiodimse.datasets import encode_dataset

    model = PATIENT_ROOT_FIND if keys["QueryRetrieveLevel"] == "PATIENT" else STUDY_ROOT_FIND
    found = await find(store, model, identifier(**keys), retrieve_aet="ARCHIVE")
    assert found
    for r in found:
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_dataset(fp, r)
        assert encode_dataset(r, "1.2.840.10008.1.2.1") == fp.getvalue()
        back = read_dataset(DicomBytesIO(fp.getvalue()), False, True)
        for elem in r:
            other = back[elem.tag]
            assert other.VR == elem.VR
            if elem.VR == "SQ" or elem.value is None:
                assert not other.value
                continue
            assert type(elem.value) is type(other.value), elem
            assert elem.value == other.value


async def test_an_instance_replaced_while_a_query_streams_is_answered_once(
        stores: OpenStore) -> None:
    """The IMAGE level reads by keyset: an instance stored again (same SOP Instance
    UID) keeps its place, so the streaming query meets it once, not again at the end;
    one not reached yet is answered with its new values."""
    s = stores()
    count = 3 * FIRST_BATCH
    await s.add_records([record(n, 1, 1) for n in range(1, count + 1)], 1.0)
    answers = QueryEngine(s).find(STUDY_ROOT_FIND, identifier(
        QueryRetrieveLevel="IMAGE", StudyInstanceUID=f"{PAT}.1.1",
        SeriesInstanceUID=f"{PAT}.2.1", SOPInstanceUID="", InstanceNumber=""))
    first = await anext(answers)  # the first batch is read
    await s.add_records([record(2, 1, 1, InstanceNumber="900"),
                         record(count, 1, 1, InstanceNumber="999")], 2.0)
    seen = [first] + [r async for r in answers]
    uids = [str(r.SOPInstanceUID) for r in seen]
    assert sorted(uids) == sorted(f"{PAT}.3.{n}" for n in range(1, count + 1))
    assert seen[-1].InstanceNumber == 999  # read after its change
    assert seen[1].InstanceNumber == 2  # read (in the first batch) before it


async def test_matches_stream_in_bounded_batches(stores: OpenStore) -> None:
    """The first answer comes after one small batch, the rest in batches growing to
    the bound: one store call per batch, not one per match nor one for all."""
    calls: list[str] = []

    class Calls(Observer):
        def store_call(self, name: str, seconds: float) -> None:
            calls.append(name)

    s = stores()
    await s.add_records([record(n, n, n) for n in range(1, 3001)], 1.0)
    s.observer = Calls()
    answers = QueryEngine(s).find(STUDY_ROOT_FIND, identifier(QueryRetrieveLevel="STUDY",
                                                              StudyInstanceUID=""))
    first = await anext(answers)
    assert first.StudyInstanceUID == f"{PAT}.1.1"
    assert len(calls) == 1
    rest = [r async for r in answers]
    assert len(rest) == 2999
    sizes, size = [], FIRST_BATCH
    while sum(sizes) <= 3000:
        sizes.append(size)
        size = min(size * 4, MAX_BATCH)
    assert len(calls) == len(sizes)  # 16, 64, 256, 1024, 1024, 1024


async def test_writers_indexing_one_study_at_once(stores: OpenStore) -> None:
    """Two writers (nodes), each storing half of one new study, one instance per
    call as C-STORE does, at the same time; and both storing the same instances
    again: nothing fails, one patient, study and series row each, every instance
    once, and either writer's query sees them all."""
    a, b = stores(), stores()
    n = 40

    async def store_part(writer: Store, numbers: range) -> None:
        for i in numbers:
            await writer.add_records([record(i, 1, 1)], 1.0)

    await asyncio.gather(store_part(a, range(1, n + 1, 2)), store_part(b, range(2, n + 1, 2)))
    await asyncio.gather(store_part(a, range(1, n + 1)), store_part(b, range(n, 0, -1)))
    for reader in (a, b):
        studies = await find(reader, STUDY_ROOT_FIND, identifier(
            QueryRetrieveLevel="STUDY", StudyInstanceUID="", NumberOfStudyRelatedSeries="",
            NumberOfStudyRelatedInstances=""))
        assert [(r.StudyInstanceUID, r.NumberOfStudyRelatedSeries,
                 r.NumberOfStudyRelatedInstances) for r in studies] == [(f"{PAT}.1.1", 1, n)]
        patients = await find(reader, PATIENT_ROOT_FIND, identifier(
            QueryRetrieveLevel="PATIENT", PatientID=""))
        assert [r.PatientID for r in patients] == ["PID1"]
        images = await find(reader, STUDY_ROOT_FIND, identifier(
            QueryRetrieveLevel="IMAGE", StudyInstanceUID=f"{PAT}.1.1",
            SeriesInstanceUID=f"{PAT}.2.1", SOPInstanceUID=""))
        assert sorted(r.SOPInstanceUID for r in images) == [
            f"{PAT}.3.{i}" for i in sorted(range(1, n + 1), key=str)]
    assert await a.count_instances() == n


async def test_removing_while_another_writer_stores_into_the_series(
        stores: OpenStore) -> None:
    """One writer removes a series' only instance while another stores a new one
    into it, round after round: the series (and its study and patient) goes only
    when nothing is under it, so the new instance is never left without them."""
    a, b = stores(), stores()
    rounds = 30
    for k in range(rounds):
        await a.add_records([record(1000 + k, 1, 100 + k)], 1.0)
        removed, _ = await asyncio.gather(a.remove_instance(f"{PAT}.3.{1000 + k}"),
                                          b.add_records([record(2000 + k, 1, 100 + k)], 2.0))
        assert removed
    study = QueryEngine(b).retrieval(STUDY_ROOT_MOVE, identifier(
        QueryRetrieveLevel="STUDY", StudyInstanceUID=f"{PAT}.1.1"))
    assert sorted([i.sop_instance_uid async for i in study]) == sorted(
        f"{PAT}.3.{2000 + k}" for k in range(rounds))
    assert await a.count_instances() == rounds

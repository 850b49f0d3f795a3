"""The query engine: identifiers checked per PS3.4 C.4/C.6 (with the status each
refusal earns), response identifiers as the request asked, retrieval lists, and
matches streamed in bounded batches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from aiodimse.archive import (
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    STUDY_ROOT_FIND,
    STUDY_ROOT_MOVE,
    QueryEngine,
    QueryError,
    QueryModel,
    model_for,
)
from aiodimse.store import DB_FILENAME, open_store
from aiodimse.store.interface import Store
from aiodimse.store.records import InstanceRecord
from aiodimse.store.sqlite import SQLiteStore

from ._data import CT, MR

PAT = "1.2.826.0.1.3680043.10.8"


def _record(n: int, study: int, series: int, **attrs: str) -> InstanceRecord:
    base = {"PatientID": f"PID{study % 2}", "PatientName": f"Name{study % 2}^Given",
            "StudyInstanceUID": f"{PAT}.1.{study}", "SeriesInstanceUID": f"{PAT}.2.{series}",
            "StudyDate": f"2024010{study}", "StudyTime": "101500", "Modality": "CT",
            "SeriesNumber": str(series), "InstanceNumber": str(n),
            "SOPInstanceUID": f"{PAT}.3.{n}"}
    return InstanceRecord(sop_class_uid=MR if series == 3 else CT,
                          sop_instance_uid=f"{PAT}.3.{n}", path=f"/archive/{n}.dcm",
                          transfer_syntax="1.2.840.10008.1.2.1", size=100, mtime_ns=0,
                          attrs=base | attrs)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(tmp_path / DB_FILENAME)
    # study 1 (PID1): series 1 (2 CT), series 3 (1 MR, Modality MR); study 2 (PID0): series 2
    await s.add_records([_record(1, 1, 1), _record(2, 1, 1), _record(3, 1, 3, Modality="MR"),
                         _record(4, 2, 2, PatientName="Ünïcode^Ñame")], 1.0)
    yield s
    await s.aclose()


def _ds(**keys: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


async def _find(store: Store, model: QueryModel, ds: Dataset, **kw: Any) -> list[Dataset]:
    return [r async for r in QueryEngine(store, **kw).find(model, ds)]


@pytest.mark.parametrize(("model", "keys", "status"), [
    (STUDY_ROOT_FIND, {}, 0xA900),  # no level
    (STUDY_ROOT_FIND, {"QueryRetrieveLevel": "PATIENT"}, 0xA900),  # not in Study Root
    (PATIENT_ROOT_FIND, {"QueryRetrieveLevel": "FRAME"}, 0xA900),
    (PATIENT_ROOT_FIND, {"QueryRetrieveLevel": "STUDY"}, 0xA900),  # no PatientID above
    (PATIENT_ROOT_FIND, {"QueryRetrieveLevel": "STUDY", "PatientID": "P*"}, 0xA900),
    (STUDY_ROOT_FIND, {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": ""}, 0xA900),
    (STUDY_ROOT_FIND, {"QueryRetrieveLevel": "SERIES",
                       "StudyInstanceUID": [f"{PAT}.1.1", f"{PAT}.1.2"]}, 0xA900),
    (STUDY_ROOT_FIND, {"QueryRetrieveLevel": "STUDY", "Modality": ""}, 0xA900),  # below
    (PATIENT_ROOT_FIND, {"QueryRetrieveLevel": "PATIENT", "StudyDate": ""}, 0xA900),
    (STUDY_ROOT_FIND, {"QueryRetrieveLevel": "STUDY", "StudyDate": "2024"}, 0xC000),
    (STUDY_ROOT_FIND, {"QueryRetrieveLevel": "STUDY", "StudyDate": "20240101-x"}, 0xC000),
    (STUDY_ROOT_FIND, {"QueryRetrieveLevel": "STUDY", "StudyTime": "25:00-"}, 0xC000),
    (STUDY_ROOT_FIND, {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "1.02"}, 0xC000),
    (STUDY_ROOT_MOVE, {"QueryRetrieveLevel": "STUDY"}, 0xA900),  # nothing named
    (STUDY_ROOT_MOVE, {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "1.2*"}, 0xA900),
    (STUDY_ROOT_MOVE, {"QueryRetrieveLevel": "SERIES", "SeriesInstanceUID": f"{PAT}.2.1"},
     0xA900),  # no study above
    (PATIENT_ROOT_GET, {"QueryRetrieveLevel": "PATIENT", "PatientID": ["A", "B"]}, 0xA900),
])
def test_refused_identifiers(store: Store, model: QueryModel, keys: dict[str, Any],
                             status: int) -> None:
    engine = QueryEngine(store)
    with pytest.raises(QueryError) as caught:
        if model.operation == "FIND":
            engine.find(model, _ds(**keys))
        else:
            engine.retrieval(model, _ds(**keys))
    assert caught.value.status == status
    assert 0 < len(caught.value.comment) <= 64


async def test_a_bad_value_from_the_wire_is_unable_to_process(store: Store) -> None:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag
    ds = _ds(QueryRetrieveLevel="SERIES", StudyInstanceUID=f"{PAT}.1.1")
    ds[0x00200011] = RawDataElement(Tag(0x00200011), "IS", 2, b"x*", 0, False, True)
    with pytest.raises(QueryError) as caught:
        QueryEngine(store).find(STUDY_ROOT_FIND, ds)
    assert caught.value.status == 0xC000


async def test_the_response_identifier(store: Store) -> None:
    ds = _ds(QueryRetrieveLevel="STUDY", PatientName="name1*", ModalitiesInStudy="",
             NumberOfStudyRelatedSeries="", NumberOfStudyRelatedInstances="",
             SOPClassesInStudy="", StudyDate="", OtherPatientIDs="XYZ",
             ReferencedStudySequence=Sequence([_ds(ReferencedSOPClassUID=CT)]))
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.add_new(0x00091010, "LO", "private")
    (r,) = await _find(store, STUDY_ROOT_FIND, ds, retrieve_aet="ARCHIVE")
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
    (r,) = await _find(store, PATIENT_ROOT_FIND, _ds(QueryRetrieveLevel="PATIENT",
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
    found = await _find(store, STUDY_ROOT_FIND, _ds(QueryRetrieveLevel="STUDY", **keys))
    assert {int(str(r.StudyInstanceUID).rsplit(".", 1)[1]) for r in found} == want


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
    found = await _find(store, model, _ds(**keys), retrieve_aet="ARCHIVE")
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


async def test_lower_levels(store: Store) -> None:
    series = await _find(store, PATIENT_ROOT_FIND, _ds(
        QueryRetrieveLevel="SERIES", PatientID="PID1", StudyInstanceUID=f"{PAT}.1.1",
        Modality="", NumberOfSeriesRelatedInstances=""))
    assert sorted((r.Modality, r.NumberOfSeriesRelatedInstances) for r in series) == [
        ("CT", 2), ("MR", 1)]
    images = await _find(store, STUDY_ROOT_FIND, _ds(
        QueryRetrieveLevel="IMAGE", StudyInstanceUID=f"{PAT}.1.1",
        SeriesInstanceUID=f"{PAT}.2.1", InstanceNumber="2", SOPClassUID="",
        AvailableTransferSyntaxUID=""))
    assert [(r.SOPInstanceUID, r.SOPClassUID, r.AvailableTransferSyntaxUID) for r in images] \
        == [(f"{PAT}.3.2", CT, "1.2.840.10008.1.2.1")]
    wrong_patient = await _find(store, PATIENT_ROOT_FIND, _ds(
        QueryRetrieveLevel="STUDY", PatientID="PID0", StudyInstanceUID=f"{PAT}.1.1"))
    assert wrong_patient == []


async def test_retrieval(store: Store) -> None:
    engine = QueryEngine(store)
    study = engine.retrieval(STUDY_ROOT_MOVE, _ds(QueryRetrieveLevel="STUDY",
                                                  StudyInstanceUID=f"{PAT}.1.1",
                                                  PatientName="ignored"))
    assert await study.count() == 3
    assert sorted([(i.sop_instance_uid, i.path) async for i in study]) == [
        (f"{PAT}.3.{n}", f"/archive/{n}.dcm") for n in (1, 2, 3)]
    images = engine.retrieval(PATIENT_ROOT_GET, _ds(
        QueryRetrieveLevel="IMAGE", PatientID="PID1", StudyInstanceUID=f"{PAT}.1.1",
        SeriesInstanceUID=f"{PAT}.2.1", SOPInstanceUID=[f"{PAT}.3.2", f"{PAT}.3.4"]))
    assert [(i.sop_class_uid, i.sop_instance_uid, i.transfer_syntax) async for i in images] \
        == [(CT, f"{PAT}.3.2", "1.2.840.10008.1.2.1")]  # 3.4 is in another series
    assert model_for(STUDY_ROOT_MOVE.sop_class_uid) is STUDY_ROOT_MOVE
    assert model_for("1.2.3") is None


async def test_matches_stream_in_bounded_batches(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The first answer comes after one small batch; no batch exceeds the bound."""
    from aiodimse.store.sqlite import store as store_module
    s = open_store(tmp_path / DB_FILENAME)
    assert isinstance(s, SQLiteStore)
    try:
        await s.add_records([_record(n, n, n) for n in range(1, 3001)], 1.0)
        asked: list[int] = []
        real = s.db.match_batch

        def batch(query: Any, after: int, limit: int) -> Any:
            asked.append(limit)
            return real(query, after, limit)

        monkeypatch.setattr(s.db, "match_batch", batch)
        answers = QueryEngine(s).find(STUDY_ROOT_FIND, _ds(QueryRetrieveLevel="STUDY",
                                                           StudyInstanceUID=""))
        first = await anext(answers)
        assert first.StudyInstanceUID == f"{PAT}.1.1"
        assert asked == [store_module.FIRST_BATCH]
        rest = [r async for r in answers]
        assert len(rest) == 2999
        assert max(asked) == store_module.MAX_BATCH
        assert sum(asked) < 3000 + 2 * store_module.MAX_BATCH
    finally:
        await s.aclose()


async def test_an_instance_replaced_while_a_query_streams_is_answered_once(
        tmp_path: Path) -> None:
    """The IMAGE level reads by keyset: an instance stored again (same SOP Instance
    UID) keeps its place, so the streaming query meets it once, not again at the end;
    one not reached yet is answered with its new values."""
    from aiodimse.store.sqlite import store as store_module
    s = open_store(tmp_path / DB_FILENAME)
    try:
        count = 3 * store_module.FIRST_BATCH
        await s.add_records([_record(n, 1, 1) for n in range(1, count + 1)], 1.0)
        answers = QueryEngine(s).find(STUDY_ROOT_FIND, _ds(
            QueryRetrieveLevel="IMAGE", StudyInstanceUID=f"{PAT}.1.1",
            SeriesInstanceUID=f"{PAT}.2.1", SOPInstanceUID="", InstanceNumber=""))
        first = await anext(answers)  # the first batch is read
        await s.add_records([_record(2, 1, 1, InstanceNumber="900"),
                             _record(count, 1, 1, InstanceNumber="999")], 2.0)
        seen = [first] + [r async for r in answers]
        uids = [str(r.SOPInstanceUID) for r in seen]
        assert sorted(uids) == sorted(f"{PAT}.3.{n}" for n in range(1, count + 1))
        assert seen[-1].InstanceNumber == 999  # read after its change
        assert seen[1].InstanceNumber == 2  # read (in the first batch) before it
    finally:
        await s.aclose()


async def test_a_removed_instance_takes_its_empty_series_study_and_patient(
        store: Store) -> None:
    assert await store.archived_path(f"{PAT}.3.4") == "/archive/4.dcm"
    assert await store.remove_instance(f"{PAT}.3.4")
    assert not await store.remove_instance(f"{PAT}.3.4")
    assert await store.archived_path(f"{PAT}.3.4") is None
    patients = await _find(store, PATIENT_ROOT_FIND, _ds(QueryRetrieveLevel="PATIENT",
                                                          PatientID=""))
    assert [r.PatientID for r in patients] == ["PID1"]
    assert await store.remove_instance(f"{PAT}.3.3")  # series 3 goes, study 1 stays
    found = await _find(store, STUDY_ROOT_FIND, _ds(QueryRetrieveLevel="STUDY",
                                                    ModalitiesInStudy=""))
    assert [r.ModalitiesInStudy for r in found] == ["CT"]

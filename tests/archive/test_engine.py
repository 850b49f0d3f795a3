"""The query engine: identifiers checked per PS3.4 C.4/C.6, with the status each
refusal earns. (Response identifiers, matching, retrieval lists and streaming are
tested on every backend: tests/store/test_archive.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiodimse.archive import (
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    STUDY_ROOT_FIND,
    STUDY_ROOT_MOVE,
    QueryEngine,
    QueryError,
    QueryModel,
)
from aiodimse.store import DB_FILENAME, open_store
from aiodimse.store.interface import Store

from ._data import PAT, identifier, record


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An index whose queries are refused before it is read (the matching itself is
    tests/store/test_archive.py's, on every backend)."""
    s = open_store(tmp_path / DB_FILENAME)
    await s.add_records([record(1, 1, 1)], 1.0)
    yield s
    await s.aclose()


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
            engine.find(model, identifier(**keys))
        else:
            engine.retrieval(model, identifier(**keys))
    assert caught.value.status == status
    assert 0 < len(caught.value.comment) <= 64


async def test_a_bad_value_from_the_wire_is_unable_to_process(store: Store) -> None:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag
    ds = identifier(QueryRetrieveLevel="SERIES", StudyInstanceUID=f"{PAT}.1.1")
    ds[0x00200011] = RawDataElement(Tag(0x00200011), "IS", 2, b"x*", 0, False, True)
    with pytest.raises(QueryError) as caught:
        QueryEngine(store).find(STUDY_ROOT_FIND, ds)
    assert caught.value.status == 0xC000

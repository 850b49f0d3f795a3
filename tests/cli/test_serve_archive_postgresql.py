"""``aiodimse serve`` as an archive on PostgreSQL (issue 23): C-STORE in, C-FIND and
C-GET out of the index in the database; and two nodes (separate loopback
addresses) on one database, each storing part of one study, each answering for
all of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import evt
from aiodimse.presentation import build_role

from ..store.pg_cluster import PGCluster
from .conftest import StartServe
from .test_serve_archive import CT, STUDY_FIND, STUDY_GET, instance, scu


async def _store(host: str, port: int, called: str, datasets: list[Dataset]) -> list[int]:
    async with scu().associate(host, port, ae_title=called) as assoc:
        return [int((await assoc.send_c_store(ds)).Status) for ds in datasets]


async def _find(host: str, port: int, called: str, query: Dataset) -> list[Dataset]:
    """The matches of a Study Root C-FIND; its final status must be Success."""
    async with scu(STUDY_FIND).associate(host, port, ae_title=called) as assoc:
        answers = [(int(s.Status), i) async for s, i in assoc.send_c_find(query, STUDY_FIND)]
    assert answers[-1][0] == 0x0000
    assert all(s == 0xFF00 and i is not None for s, i in answers[:-1])
    return [i for _, i in answers[:-1] if i is not None]


async def _get(host: str, port: int, called: str, query: Dataset) -> tuple[int, list[str]]:
    """A Study Root C-GET: its final status and the SOP Instance UIDs received."""
    received: list[str] = []

    async def on_store(event: object) -> int:
        received.append(str(event.dataset.SOPInstanceUID))  # type: ignore[attr-defined]
        return 0

    async with scu(STUDY_GET).associate(host, port, ae_title=called,
                                        ext_neg=[build_role(CT, scp_role=True)],
                                        evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
        results = [s async for s, _ in assoc.send_c_get(query, STUDY_GET)]
    return int(results[-1].Status), received


def _study_query(study: str = "", name: str = "") -> Dataset:
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = study
    q.PatientName = name
    q.NumberOfStudyRelatedInstances = ""
    q.ModalitiesInStudy = ""
    return q


async def test_serve_stores_finds_and_gets_on_postgresql(
        serve: StartServe, pg_cluster: PGCluster) -> None:
    url = pg_cluster.new_database()
    srv = await serve("--database", url, "--disable-service", "ups").ready()
    assert "storage, query_retrieve" in srv.log()
    study, series = str(generate_uid()), str(generate_uid())
    sent = [instance(study, series) for _ in range(3)]
    other = instance(str(generate_uid()), str(generate_uid()), patient="P2", name="ROE^JANE")
    assert await _store("127.0.0.1", srv.port, "AIODIMSE", [*sent, other]) == [0] * 4

    (match,) = await _find("127.0.0.1", srv.port, "AIODIMSE", _study_query(name="doe*"))
    assert match.StudyInstanceUID == study and str(match.PatientName) == "DOE^JOHN"
    assert int(match.NumberOfStudyRelatedInstances) == 3 and match.ModalitiesInStudy == "CT"
    assert len(await _find("127.0.0.1", srv.port, "AIODIMSE", _study_query())) == 2

    get = Dataset()
    get.QueryRetrieveLevel = "SERIES"
    get.StudyInstanceUID, get.SeriesInstanceUID = study, series
    status, received = await _get("127.0.0.1", srv.port, "AIODIMSE", get)
    assert status == 0
    assert sorted(received) == sorted(str(ds.SOPInstanceUID) for ds in sent)
    assert srv.stop() == 0


async def test_two_nodes_each_store_part_of_a_study_and_either_finds_it_all(
        serve: StartServe, pg_cluster: PGCluster, tmp_path: Path) -> None:
    """Two nodes on one database and one archive folder (shared storage, as a
    deployment mounts it on each), each storing half of a study's instances at the
    same time: a C-FIND on either sees every instance, and a C-GET on either sends
    them all, those the other node received too."""
    url = pg_cluster.new_database()
    shared = tmp_path / "shared-archive"
    node_a = await serve("--database", url, "--disable-service", "ups",
                         "--host", "127.0.0.2", "-aet", "NODE_A",
                         "--archive-dir", str(shared), data=tmp_path / "a").ready()
    node_b = await serve("--database", url, "--disable-service", "ups",
                         "--host", "127.0.0.3", "-aet", "NODE_B",
                         "--archive-dir", str(shared), data=tmp_path / "b").ready()
    study, series = str(generate_uid()), str(generate_uid())
    sent = [instance(study, series) for _ in range(12)]
    stored = await asyncio.gather(_store("127.0.0.2", node_a.port, "NODE_A", sent[0::2]),
                                  _store("127.0.0.3", node_b.port, "NODE_B", sent[1::2]))
    assert stored == [[0] * 6, [0] * 6]

    image = Dataset()
    image.QueryRetrieveLevel = "IMAGE"
    image.StudyInstanceUID, image.SeriesInstanceUID = study, series
    image.SOPInstanceUID = ""
    want = sorted(str(ds.SOPInstanceUID) for ds in sent)
    for host, port, called in (("127.0.0.2", node_a.port, "NODE_A"),
                               ("127.0.0.3", node_b.port, "NODE_B")):
        (match,) = await _find(host, port, called, _study_query(study))
        assert int(match.NumberOfStudyRelatedInstances) == 12
        assert sorted(r.SOPInstanceUID for r in await _find(host, port, called, image)) == want
        get = Dataset()
        get.QueryRetrieveLevel = "STUDY"
        get.StudyInstanceUID = study
        status, received = await _get(host, port, called, get)
        assert status == 0 and sorted(received) == want
    assert node_a.stop() == 0 and node_b.stop() == 0
    for node in (node_a, node_b):  # each took its half (the final summary)
        assert "stored=6 stored_again=0" in node.log()

"""Archive index: C-FIND's time to the first match and matches/s over 10,000.

Builds an SQLite archive index in a temporary folder (no files: the records alone),
then runs the query engine in process (no network) and reports, as the median of
``--repeat`` runs, the time from the call to the first response identifier, the
time to the last, and matches/s:

- STUDY: Study Root, STUDY level, ``PatientName=*`` plus a date range, answering
  ten keys including the computed ModalitiesInStudy and
  NumberOfStudyRelatedInstances over N studies of one instance each;
- IMAGE: Study Root, IMAGE level, every instance of one series of N;
- SELECTIVE: STUDY level, a PN wildcard matching one patient in a hundred.

    python3 benchmarks/archive_query.py [--instances 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from pydicom.dataset import Dataset

from aiodimse.archive import STUDY_ROOT_FIND, QueryEngine
from aiodimse.store import DB_FILENAME, open_store
from aiodimse.store.interface import Store
from aiodimse.store.records import InstanceRecord

__all__ = ["main"]

ROOT = "1.2.826.0.1.3680043.10.1451.9"
CT = "1.2.840.10008.5.1.4.1.1.2"


def record(n: int, study: str, series: str, date: str | None = None) -> InstanceRecord:
    """Instance ``n`` of the benchmark archives (``date``: the StudyDate, by default
    one of 2024's months by ``n``); cfind_many.py builds its index from these too."""
    uid = f"{ROOT}.3.{n}"
    return InstanceRecord(
        sop_class_uid=CT, sop_instance_uid=uid, path=f"/archive/{uid}.dcm",
        transfer_syntax="1.2.840.10008.1.2.1", size=500_000, mtime_ns=0, attrs={
            "PatientID": f"PID{n % 1000}", "PatientName": f"Doe{n % 100}^Jane",
            "PatientBirthDate": "19700101", "PatientSex": "F",
            "StudyInstanceUID": study, "SeriesInstanceUID": series,
            "StudyDate": date or f"2024{1 + n % 12:02d}15", "StudyTime": "101500",
            "AccessionNumber": f"A{n}", "StudyID": str(n % 1000),
            "StudyDescription": "CHEST", "Modality": "CT", "SeriesNumber": "1",
            "InstanceNumber": str(n), "SOPInstanceUID": uid})


async def _build(store: Store, n: int) -> float:
    started = time.perf_counter()
    batch: list[InstanceRecord] = []
    for i in range(n):  # N studies of one instance each
        batch.append(record(i, f"{ROOT}.1.{i}", f"{ROOT}.2.{i}"))
        if len(batch) == 500:
            await store.add_records(batch, 1.0)
            batch.clear()
    for i in range(n):  # one series of N instances
        batch.append(record(n + i, f"{ROOT}.1.99999999", f"{ROOT}.2.99999999"))
        if len(batch) == 500:
            await store.add_records(batch, 1.0)
            batch.clear()
    if batch:
        await store.add_records(batch, 1.0)
    return time.perf_counter() - started


def query(kind: str) -> Dataset:
    """The identifier of each kind (module doc); cfind_many.py asks the same."""
    ds = Dataset()
    if kind == "IMAGE":
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID = f"{ROOT}.1.99999999"
        ds.SeriesInstanceUID = f"{ROOT}.2.99999999"
        ds.SOPInstanceUID = ""
        ds.SOPClassUID = ""
        ds.InstanceNumber = ""
        return ds
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = "Doe7^*" if kind == "SELECTIVE" else "*"
    ds.PatientID = ""
    ds.StudyInstanceUID = ""
    ds.StudyDate = "20240101-20241231"
    ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.StudyDescription = ""
    ds.ModalitiesInStudy = ""
    ds.NumberOfStudyRelatedInstances = ""
    ds.ReferringPhysicianName = ""
    return ds


async def _run(engine: QueryEngine, kind: str) -> tuple[float, float, int]:
    ds = query(kind)
    started = time.perf_counter()
    answers = engine.find(STUDY_ROOT_FIND, ds)
    first = 0.0
    count = 0
    async for _ in answers:
        if not count:
            first = time.perf_counter() - started
        count += 1
    return first, time.perf_counter() - started, count


async def _main(n: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / DB_FILENAME)
        try:
            built = await _build(store, n)
            print(f"index of {2 * n} instances ({n + 1} studies) built in {built:.1f} s "
                  f"({2 * n / built:,.0f} records/s)")
            engine = QueryEngine(store, retrieve_aet="ARCHIVE")
            print(f"{'query':<10} {'matches':>8} {'first ms':>9} {'all ms':>9} {'matches/s':>10}")
            for kind in ("STUDY", "IMAGE", "SELECTIVE"):
                runs = [await _run(engine, kind) for _ in range(repeat)]
                first = statistics.median(r[0] for r in runs)
                total = statistics.median(r[1] for r in runs)
                count = runs[0][2]
                print(f"{kind:<10} {count:>8} {first * 1000:>9.1f} {total * 1000:>9.0f} "
                      f"{count / total:>10,.0f}")
        finally:
            await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(_main(args.instances, args.repeat))


if __name__ == "__main__":
    main()

"""Each backend's archive index against the pure-Python reference
(tests/archive/reference.py) over generated archives and queries: the same
entities, with the same values, for every model, level and kind of matching
(single, universal, wildcard, range, lists); then every instance removed, and
nothing is left at any level (pruning)."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from aiodimse.archive import PATIENT_ROOT_FIND, STUDY_ROOT_FIND, QueryModel
from aiodimse.archive.query import parse_find
from aiodimse.store import open_store
from aiodimse.store.records import KEYS, PATIENT, IndexQuery, InstanceRecord, normalise
from tests.examples import examples

from ..archive.reference import Reference, shown

STUDIES = [f"1.2.826.0.1.3680043.10.9.1.{n}" for n in range(4)]
SERIES = [f"1.2.826.0.1.3680043.10.9.2.{n}" for n in range(6)]
INSTANCES = [f"1.2.826.0.1.3680043.10.9.3.{n}" for n in range(12)]
CLASSES = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"]
PATIENT_IDS = ["P1", "p1", "P2", ""]
CHARS = "aAbBzZéÉ%_[]^ "  # é/É: case folded for ASCII only
DATES = ["19991231", "20200101", "20200102", "20210615"]
TIMES = ["000000", "083000", "083000.5", "100000", "235959.999999"]

text = st.text(alphabet=CHARS, max_size=5).map(lambda s: s.strip())


@st.composite
def records(draw: st.DrawFn) -> InstanceRecord:
    attrs = {
        "PatientID": draw(st.sampled_from(PATIENT_IDS)),
        "PatientName": normalise("PN", draw(text)),
        "PatientBirthDate": draw(st.sampled_from(["", *DATES])),
        "PatientSex": draw(st.sampled_from(["", "F", "M", "O"])),
        "StudyInstanceUID": draw(st.sampled_from(["", *STUDIES])),
        "StudyDate": draw(st.sampled_from(["", *DATES])),
        "StudyTime": draw(st.sampled_from(["", *TIMES])),
        "AccessionNumber": draw(text),
        "StudyID": draw(text),
        "ReferringPhysicianName": normalise("PN", draw(text)),
        "StudyDescription": draw(text),
        "SeriesInstanceUID": draw(st.sampled_from([*SERIES, SERIES[0], ""])),
        "Modality": draw(st.sampled_from(["", "CT", "MR", "ct"])),
        "SeriesNumber": draw(st.sampled_from(["", "1", "2", "10"])),
        "SeriesDescription": draw(text),
        "InstanceNumber": draw(st.sampled_from(["", "1", "2"])),
    }
    uid = draw(st.sampled_from(INSTANCES))
    attrs["SOPInstanceUID"] = uid
    return InstanceRecord(
        sop_class_uid=draw(st.sampled_from(CLASSES)), sop_instance_uid=uid,
        path=f"/archive/{uid}.dcm", transfer_syntax=draw(st.sampled_from(
            ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])),
        size=1, mtime_ns=0, attrs={k: v for k, v in attrs.items() if v})


def _pattern(draw: st.DrawFn) -> str:
    return draw(st.text(alphabet=CHARS.strip() + "*?", min_size=1, max_size=4))


def _range(draw: st.DrawFn, values: list[str]) -> str:
    lo, hi = draw(st.sampled_from(values)), draw(st.sampled_from(values))
    return draw(st.sampled_from([f"{lo}-{hi}", f"-{hi}", f"{lo}-", lo]))


def _derived(draw: st.DrawFn, stored: str) -> str:
    """A query value near a stored one: its case changed, a character as ``?``, the
    rest as ``*``, a literal ``%``/``_``/``[`` kept (what SQL's escaping must keep)."""
    value = stored.swapcase() if draw(st.booleans()) else stored
    if value and draw(st.booleans()):
        at = draw(st.integers(0, len(value) - 1))
        value = value[:at] + draw(st.sampled_from(["?", "*", "%", "_"])) + value[at + 1:]
    if draw(st.booleans()):
        value = value[:draw(st.integers(0, len(value)))] + "*"
    return value or "x"


def _value(draw: st.DrawFn, keyword: str, recs: list[InstanceRecord]) -> Any:
    key = KEYS[keyword]
    if key.computed and not key.multi:
        return None
    if key.vr == "UI":
        pool = {"StudyInstanceUID": STUDIES, "SeriesInstanceUID": SERIES,
                "SOPInstanceUID": INSTANCES}.get(keyword, CLASSES)
        return draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    if key.vr == "DA":
        return _range(draw, DATES)
    if key.vr == "TM":
        return draw(st.sampled_from([_range(draw, TIMES), "08", "0830-10", "-08"]))
    if key.vr == "IS":
        return draw(st.sampled_from(["1", "2", "010"]))
    if keyword in ("Modality", "ModalitiesInStudy", "PatientSex"):
        values = draw(st.lists(st.sampled_from(["CT", "MR", "ct", "C*", "?T", "F", "*"]),
                               min_size=1, max_size=2))
        return values if len(values) > 1 else values[0]
    stored = [r.attrs[keyword] for r in recs if r.attrs.get(keyword)]
    if stored and draw(st.booleans()):
        return _derived(draw, draw(st.sampled_from(stored)))
    return draw(st.sampled_from([_pattern(draw), draw(text) or "x"]))


def _query(draw: st.DrawFn, recs: list[InstanceRecord]) -> tuple[QueryModel, Dataset]:
    """A query of a random model and level: the unique keys above the level taken
    from one record (so there is something below them), a few keys only returned,
    one or two matched, most often on values near stored ones."""
    model = draw(st.sampled_from([PATIENT_ROOT_FIND, STUDY_ROOT_FIND]))
    level = draw(st.sampled_from(model.levels))
    rank = model.levels.index(level)
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    above = [k.keyword for k in KEYS.values() if k.unique and k.level in model.levels[:rank]]
    some = draw(st.sampled_from(recs))
    for keyword in above:
        setattr(ds, keyword, some.attrs.get(keyword) or STUDIES[0])
    allowed = [k.keyword for k in KEYS.values() if k.keyword not in above
               and model.levels.index(model.level_of(k.level)) <= rank]
    for keyword in draw(st.lists(st.sampled_from(allowed), max_size=4, unique=True)):
        setattr(ds, keyword, "")  # universal: returned only
    for keyword in draw(st.lists(st.sampled_from(allowed), max_size=2, unique=True)):
        setattr(ds, keyword, _value(draw, keyword, recs))
    return model, ds


async def _compare(url: str, recs: list[InstanceRecord], model: QueryModel,
                   ds: Dataset) -> None:
    """Index ``recs`` (in two calls: pruning across them), compare one query with
    the reference, then remove every instance: the database is empty again for
    the next example, or the test fails. (SQLite: a database in memory each time.)"""
    store = open_store(url if url.startswith("postgresql") else ":memory:")
    try:
        half = len(recs) // 2
        try:
            await store.add_records(recs[:half], 1.0)
            await store.add_records(recs[half:], 2.0)
            ref = Reference()
            ref.add(recs)
            query = parse_find(model, ds).query
            got = sorted([tuple(row[k] for k in query.keys)
                          async for row in store.match(query)])
            want = sorted(shown(row, query.keys) for row in ref.match(query))
            assert got == want, (query, got, want)
        finally:
            for uid in {r.sop_instance_uid for r in recs}:
                assert await store.remove_instance(uid)
        everyone = IndexQuery(PATIENT, (), ("PatientID",))
        assert [row async for row in store.match(everyone)] == []
        assert await store.count_instances() == 0
    finally:
        await store.aclose()


_SETTINGS = settings(deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# fewer on PostgreSQL: each example opens a pool of its own (a loop each)
_EXAMPLES = {"sqlite": examples(300), "postgresql": examples(100)}


def _examples(url: str) -> int:
    return _EXAMPLES["postgresql" if url.startswith("postgresql") else "sqlite"]


def test_sql_matches_like_the_reference(store_url: str) -> None:
    @settings(_SETTINGS, max_examples=_examples(store_url))
    @given(st.data())
    def check(data: st.DataObject) -> None:
        recs = data.draw(st.lists(records(), min_size=1, max_size=14))
        model, ds = _query(data.draw, recs)
        asyncio.run(_compare(store_url, recs, model, ds))
    check()



names = st.text(alphabet="aAbBéÉ%_[]\\^*?", min_size=1, max_size=6).map(
    lambda s: s.replace("\\", "").replace("*", "").replace("?", "").strip("^") or "a")


def test_text_patterns_like_the_reference(store_url: str) -> None:
    """Wildcards over names made of the characters SQL's patterns treat specially
    (``%``, ``_``, ``[``, ``]``): person names ignoring ASCII case, a description not."""
    @settings(_SETTINGS, max_examples=_examples(store_url))
    @given(st.data())
    def check(data: st.DataObject) -> None:
        _patterns(store_url, data)
    check()


def _patterns(store_url: str, data: st.DataObject) -> None:
    stored = data.draw(st.lists(names, min_size=1, max_size=8))
    recs = [InstanceRecord(
        sop_class_uid=CLASSES[0], sop_instance_uid=f"{INSTANCES[0]}.{n}", path=f"/a/{n}",
        transfer_syntax="1.2.840.10008.1.2", size=1, mtime_ns=0,
        attrs={"PatientID": f"P{n}", "PatientName": name, "StudyDescription": name,
               "StudyInstanceUID": f"{STUDIES[0]}.{n}", "SeriesInstanceUID": f"{SERIES[0]}.{n}"})
        for n, name in enumerate(stored)]
    value = _derived(data.draw, data.draw(st.sampled_from(stored)))
    keyword = data.draw(st.sampled_from(["PatientName", "StudyDescription"]))
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    setattr(ds, keyword, value)
    asyncio.run(_compare(store_url, recs, STUDY_ROOT_FIND, ds))

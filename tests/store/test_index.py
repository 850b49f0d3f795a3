"""The instance index, the same on every backend."""

from __future__ import annotations

from ._records import CT, MR
from .conftest import OpenStore


async def test_instances_are_added_replaced_found_and_counted(stores: OpenStore) -> None:
    store = stores()
    assert await store.count_instances() == 0
    assert await store.add_instances([(CT, "1.1", None), (CT, "1.2", "/a/2.dcm")], 1.0) == 2
    assert await store.add_instances([(MR, "1.2", "/b/2.dcm")], 2.0) == 1  # replaced
    assert await store.find_instances(["1.1", "1.2", "9.9", "1.1"]) == {"1.1": CT, "1.2": MR}
    assert await store.find_instances([]) == {}
    assert await store.count_instances() == 2
    uids = [f"2.{i}" for i in range(1200)]  # more than one IN list of SQLite's
    assert await store.add_instances([(CT, u, None) for u in uids], 3.0) == 1200
    assert await stores().find_instances(uids) == dict.fromkeys(uids, CT)  # another worker


async def test_files_remember_size_and_mtime_and_vouch_for_one_instance(
    stores: OpenStore,
) -> None:
    store = stores()
    assert await store.add_files([(CT, "1.1", "/a/x.dcm", 10, 111),
                                  (CT, "1.2", "/a/y.dcm", 20, 222)], 1.0) == 2
    assert await store.file_stats(["/a/x.dcm", "/a/y.dcm", "/a/z.dcm"]) == {
        "/a/x.dcm": (10, 111), "/a/y.dcm": (20, 222)}
    # x.dcm now holds another instance: 1.1 is no longer vouched for by it
    assert await store.add_files([(MR, "1.3", "/a/x.dcm", 30, 333)], 2.0) == 1
    assert await store.file_stats(["/a/x.dcm"]) == {"/a/x.dcm": (30, 333)}
    assert await store.find_instances(["1.1", "1.2", "1.3"]) == {"1.2": CT, "1.3": MR}
    # an instance another file put under its own path since stays
    await store.add_files([(CT, "1.4", "/a/p.dcm", 1, 1)], 3.0)
    await store.add_files([(CT, "1.4", "/a/q.dcm", 1, 1)], 3.0)
    await store.add_files([(CT, "1.5", "/a/p.dcm", 2, 2)], 4.0)
    assert await store.find_instances(["1.4", "1.5"]) == {"1.4": CT, "1.5": CT}
    assert await store.count_instances() == 4


async def test_the_index_completeness_flag(stores: OpenStore) -> None:
    a, b = stores(), stores()
    assert await a.index_complete()  # never set: complete
    await a.set_index_complete(False)
    assert not await b.index_complete()
    await b.set_index_complete(True)
    assert await a.index_complete()

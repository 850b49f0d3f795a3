"""Retention of final workitems (PS3.4 CC.2.1.3): the SQLite store's purge deletes
COMPLETED and CANCELED workitems past their keeping unless a deletion lock holds
them, in bounded batches; the service's purger runs it while it runs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from aiodimse.services.ups import UPSService
from aiodimse.services.ups.retention import Retention, purge
from aiodimse.store.interface import WorkitemRow
from aiodimse.store.sqlite import SQLiteStore

NOW = 1_900_000_000.0
DAY = 86400.0


def _row(uid: str, state: str) -> WorkitemRow:
    return WorkitemRow(sop_instance_uid=uid, state=state, transaction_uid=None, dataset=b"")


async def _add(store: SQLiteStore, uid: str, state: str, changed: float) -> None:
    assert await store.ups_create(_row(uid, state), changed)


async def test_purge_honours_age_state_and_deletion_locks(tmp_path: Path) -> None:
    store = SQLiteStore.in_directory(tmp_path)
    try:
        await _add(store, "1.1", "COMPLETED", NOW - 8 * DAY)
        await _add(store, "1.2", "CANCELED", NOW - 8 * DAY)  # locked below
        await _add(store, "1.3", "CANCELED", NOW - 8 * DAY)  # subscribed without a lock
        await _add(store, "1.4", "COMPLETED", NOW - DAY)  # not old enough
        await _add(store, "1.5", "IN PROGRESS", NOW - 30 * DAY)  # not final
        await store.ups_subscribe("RIS", "1.2", True, [])
        await store.ups_subscribe("RIS", "1.3", False, [])
        week = Retention(keep_final=7 * DAY)
        assert await purge(store, week, NOW) == 2
        assert [await store.ups_get(u) is not None for u in ("1.1", "1.2", "1.3", "1.4", "1.5")
                ] == [False, True, False, True, True]
        assert await store.ups_subscribers("1.3") == []  # its subscription went with it
        assert await purge(store, Retention(), NOW) == 0  # keep_final 0: kept forever
        assert await store.ups_unsubscribe("RIS", "1.2")  # the lock released
        assert await purge(store, week, NOW) == 1
        assert await store.ups_get("1.2") is None
    finally:
        await store.aclose()


async def test_a_round_is_bounded(tmp_path: Path) -> None:
    store = SQLiteStore.in_directory(tmp_path)
    try:
        for n in range(7):
            await _add(store, f"2.{n}", "COMPLETED", NOW - 2 * DAY)
        small = Retention(keep_final=DAY, batch=2, batches=2)
        assert await purge(store, small, NOW) == 4  # two batches of two, the rest waits
        assert await purge(store, small, NOW) == 3
        assert await purge(store, small, NOW) == 0
    finally:
        await store.aclose()


async def test_the_service_purges_while_it_runs(tmp_path: Path) -> None:
    store = SQLiteStore.in_directory(tmp_path)
    service = UPSService(store, retention=Retention(keep_final=DAY, interval=0.05))

    async def purged(count: int) -> None:
        while service.purger is not None and service.purger.purged < count:
            await asyncio.sleep(0.02)

    try:
        await _add(store, "3.1", "CANCELED", time.time() - 2 * DAY)
        await service.start()
        await asyncio.wait_for(purged(1), 5)
        assert await store.ups_get("3.1") is None
        await _add(store, "3.2", "CANCELED", time.time() - 2 * DAY)
        await _add(store, "3.3", "CANCELED", time.time())  # kept: changed just now
        await asyncio.wait_for(purged(2), 5)  # the next round, an interval later
    finally:
        await service.stop()
        await store.aclose()
    assert service.purger is not None and service.purger.purged == 2


def test_unusable_settings_are_refused() -> None:
    for bad in ({"keep_final": -1.0}, {"interval": 0.0}, {"batch": 0}):
        with pytest.raises(ValueError, match="retention"):
            Retention(**bad)  # type: ignore[arg-type]

"""A server's connections share one timer for their upper-layer deadlines."""

from __future__ import annotations

import asyncio

import pytest

from aiodimse.aio.sweep import DeadlineSweep

from ._helpers import bounded, make_scp_ae, make_scu_ae, serving


class _Conn:
    """A connection whose deadline passes at ``due`` (None: it has none)."""

    def __init__(self, due: float | None) -> None:
        self.due = due
        self.expired_at: float | None = None

    def check_deadline(self, now: float) -> bool:
        if self.due is not None and now >= self.due:
            self.expired_at = now
            self.due = None
        return self.due is not None


async def test_each_deadline_is_acted_on_within_one_period_after_it_passes() -> None:
    loop = asyncio.get_running_loop()
    sweep = DeadlineSweep(loop, 0.05, loop.time)
    start = loop.time()
    early, late, none = _Conn(start + 0.02), _Conn(start + 0.12), _Conn(None)
    for conn in (early, late, none):
        sweep.watch(conn)
    await asyncio.sleep(0.3)
    for conn, due in ((early, 0.02), (late, 0.12)):
        assert conn.expired_at is not None
        assert due <= conn.expired_at - start < due + 0.05 + 0.1  # a period, and slack
    assert none.expired_at is None
    assert sweep.watched == 0  # nothing pending any more: the timer has stopped too
    assert sweep._timer is None


async def test_forget_and_close() -> None:
    loop = asyncio.get_running_loop()
    sweep = DeadlineSweep(loop, 0.02, loop.time)
    gone, kept = _Conn(loop.time()), _Conn(loop.time() + 10)
    sweep.watch(gone)
    sweep.watch(kept)
    sweep.forget(gone)  # closed before the sweep came
    await asyncio.sleep(0.1)
    assert gone.expired_at is None
    assert sweep.watched == 1
    sweep.close()
    assert sweep.watched == 0
    assert sweep._timer is None
    with pytest.raises(ValueError):
        DeadlineSweep(loop, 0.0, loop.time)


async def test_a_failing_check_neither_stops_the_sweep_nor_the_others() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        sweep = DeadlineSweep(loop, 0.02, loop.time)

        class _Broken(_Conn):
            def check_deadline(self, now: float) -> bool:
                raise RuntimeError("broken")

        broken, later = _Broken(loop.time()), _Conn(loop.time() + 0.1)
        sweep.watch(broken)
        sweep.watch(later)
        await asyncio.sleep(0.3)
        assert later.expired_at is not None  # still swept after the failure
        assert sweep.watched == 0
        assert [type(c["exception"]) for c in reported] == [RuntimeError]
    finally:
        loop.set_exception_handler(None)


async def test_silent_connections_are_closed_by_the_shared_artim() -> None:
    scp = make_scp_ae()
    scp.artim_timeout = 0.4
    loop = asyncio.get_running_loop()
    async with serving(ae=scp) as server:
        start = loop.time()
        opened = [
            await bounded(asyncio.open_connection("127.0.0.1", server.port)) for _ in range(20)
        ]
        try:
            await bounded(_until(lambda: server._deadlines.watched == 20))  # one sweep
            assert all(p._timer is None for p in _protocols(server))
            for reader, _ in opened:
                assert await bounded(reader.read(), 5.0) == b""  # closed by ARTIM
            assert 0.4 <= loop.time() - start < 3.0
        finally:
            for _, writer in opened:
                writer.close()
        await bounded(_until(lambda: server.connection_count == 0))
        assert server._deadlines.watched == 0
        # An established association has no deadline: watched from its connection
        # (ARTIM) until the next sweep finds nothing due, then no more.
        async with make_scu_ae().associate("127.0.0.1", server.port) as assoc:
            assert (await bounded(assoc.send_c_echo())).Status == 0
            await asyncio.sleep(0.4 / 4 + 0.1)
            assert server._deadlines.watched == 0
            assert (await bounded(assoc.send_c_echo())).Status == 0


def _protocols(server: object) -> list[object]:
    return [a.proto for a in server._associations if a.proto is not None]  # type: ignore[attr-defined]


async def _until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.01)

"""Handlers that block, hang, raise SystemExit or outlive their association.

Issue 18: stuck plain handlers took the loop's default executor (C-ECHO and N-CREATE
timed out elsewhere, shutdown hung); SystemExit in a handler ended the process; a
handler left running was garbage-collected, and a hung one held its association.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading
from typing import Any

from aiodimse import Event, evt

from ._helpers import (
    MPPS,
    STGCMT,
    STGCMT_INSTANCE,
    bounded,
    ds_of,
    make_scp_ae,
    make_scu_ae,
    serving,
)


async def _wait_until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_stuck_sync_handlers_leave_other_associations_served() -> None:
    """8 plain handlers stuck for good: C-ECHO, sync and async handlers still answer."""
    release = threading.Event()
    entered: list[int] = []

    def stuck_action(event: Event) -> tuple[int, None]:
        entered.append(1)
        release.wait(30)
        return 0x0000, None

    def sync_create(event: Event) -> tuple[int, Any]:
        return 0x0000, None

    async def async_get(event: Event) -> tuple[int, Any]:
        return 0x0000, ds_of(PatientID="X")

    handlers = [(evt.EVT_N_ACTION, stuck_action), (evt.EVT_N_CREATE, sync_create),
                (evt.EVT_N_GET, async_get)]
    scu = make_scu_ae()
    scu.dimse_timeout = 5.0
    try:
        async with serving(handlers) as server:
            stuck = [await bounded(scu.associate("127.0.0.1", server.port)) for _ in range(8)]
            pending = [asyncio.ensure_future(a.send_n_action(ds_of(PatientID="1"), 1, STGCMT,
                                                              STGCMT_INSTANCE))
                       for a in stuck]
            await _wait_until(lambda: len(entered) == 8, "8 handlers to block")
            async with scu.associate("127.0.0.1", server.port) as other:
                assert (await bounded(other.send_c_echo())).Status == 0
                status, _ = await bounded(other.send_n_create(ds_of(PatientID="1"), MPPS,
                                                              "1.2.3.4"))
                assert status.Status == 0  # a plain handler: a thread of its own pool
                status, reply = await bounded(other.send_n_get([], MPPS, "1.2.3.4"))
                assert status.Status == 0 and reply is not None
            release.set()
            for fut in pending:
                status, _ = await bounded(fut)
                assert status.Status == 0
            for a in stuck:
                await bounded(a.release())
    finally:
        release.set()


async def test_handler_pool_is_sized_by_the_ae() -> None:
    """``AE.handler_threads`` bounds the threads; async handlers never wait for them."""
    release = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def slow_action(event: Event) -> tuple[int, None]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(30)
        with lock:
            running -= 1
        return 0x0000, None

    async def async_create(event: Event) -> tuple[int, Any]:
        return 0x0000, None

    scp = make_scp_ae()
    scp.handler_threads = 2
    handlers = [(evt.EVT_N_ACTION, slow_action), (evt.EVT_N_CREATE, async_create)]
    try:
        async with serving(handlers, ae=scp) as server:
            assocs = [await bounded(make_scu_ae().associate("127.0.0.1", server.port))
                      for _ in range(4)]
            pending = [asyncio.ensure_future(a.send_n_action(ds_of(PatientID="1"), 1, STGCMT,
                                                              STGCMT_INSTANCE))
                       for a in assocs]
            await _wait_until(lambda: most == 2, "2 handlers to run")
            await asyncio.sleep(0.2)
            assert most == 2  # the other two wait for a thread
            async with make_scu_ae().associate("127.0.0.1", server.port) as other:
                status, _ = await bounded(other.send_n_create(None, MPPS, "1.2.3.4"))
                assert status.Status == 0
            release.set()
            assert [(await bounded(f))[0].Status for f in pending] == [0] * 4
            for a in assocs:
                await bounded(a.release())
    finally:
        release.set()


async def test_handler_threads_end_when_idle(monkeypatch: Any) -> None:
    import aiodimse.handlers as handlers_module
    from aiodimse.handlers import HandlerThreads

    monkeypatch.setattr(handlers_module, "_IDLE_EXIT", 0.05)
    pool = HandlerThreads(3)
    results = await bounded(asyncio.gather(*(pool.run(lambda i=i: i * 2) for i in range(6))))
    assert results == [0, 2, 4, 6, 8, 10]
    assert 1 <= pool.threads <= 3
    await _wait_until(lambda: pool.threads == 0, "idle threads to end")
    assert await bounded(pool.run(lambda: "again")) == "again"  # a new one is made


_EXIT_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from aiodimse import AE, evt
    from pydicom.dataset import Dataset

    VERIFICATION, STGCMT, MPPS = "1.2.840.10008.1.1", "1.2.840.10008.1.20.1", \\
        "1.2.840.10008.3.1.2.3.3"
    WHAT = {"exit": SystemExit, "interrupt": KeyboardInterrupt}

    async def first_step(event):
        raise WHAT[event.action_information.PatientID](3)

    async def after_suspending(event):
        await asyncio.sleep(0.01)
        raise WHAT[event.attribute_list.PatientID](4)

    def plain(event):
        raise WHAT[event.modification_list.PatientID](5)

    def on_established(event):
        raise SystemExit(6)

    async def main():
        scp = AE("SCP")
        for uid in (VERIFICATION, STGCMT, MPPS):
            scp.add_supported_context(uid)
        server = await scp.start_server(("127.0.0.1", 0), evt_handlers=[
            (evt.EVT_N_ACTION, first_step), (evt.EVT_N_CREATE, after_suspending),
            (evt.EVT_N_SET, plain), (evt.EVT_ESTABLISHED, on_established)])
        scu = AE("SCU")
        for uid in (VERIFICATION, STGCMT, MPPS):
            scu.add_requested_context(uid)
        statuses = []
        for what in WHAT:
            ds = Dataset()
            ds.PatientID = what
            async with scu.associate("127.0.0.1", server.port) as assoc:
                s, _ = await assoc.send_n_action(ds, 1, STGCMT, "1.2.840.10008.1.20.1.1")
                statuses.append(int(s.Status))
                s, _ = await assoc.send_n_create(ds, MPPS, "1.2.3.4")
                statuses.append(int(s.Status))
                s, _ = await assoc.send_n_set(ds, MPPS, "1.2.3.4")
                statuses.append(int(s.Status))
                statuses.append(int((await assoc.send_c_echo()).Status))
        await server.shutdown(1)
        print("statuses", statuses, flush=True)

    asyncio.run(asyncio.wait_for(main(), 30))
    print("still running", flush=True)
""")


def test_systemexit_and_keyboardinterrupt_in_handlers_answer_0x0110() -> None:
    """Raised by async (first step, later) and plain handlers, and a notification handler."""
    proc = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "still running" in proc.stdout
    failure, ok = 0x0110, 0
    assert f"statuses {[failure, failure, failure, ok] * 2}" in proc.stdout
    assert "SystemExit" in proc.stderr and "KeyboardInterrupt" in proc.stderr  # logged


async def test_hung_handler_is_answered_0x0110_and_cancelled() -> None:
    cancelled = asyncio.Event()

    async def hung(event: Event) -> tuple[int, None]:
        try:
            await asyncio.get_running_loop().create_future()  # never done
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0x0000, None

    release = threading.Event()

    def hung_plain(event: Event) -> tuple[int, None]:
        release.wait(30)
        return 0x0000, None

    scp = make_scp_ae()
    scp.handler_timeout = 0.3
    handlers = [(evt.EVT_N_ACTION, hung), (evt.EVT_N_CREATE, hung_plain)]
    try:
        async with serving(handlers, ae=scp) as server:
            scu = make_scu_ae()
            scu.dimse_timeout = 8.0
            async with scu.associate("127.0.0.1", server.port) as assoc:
                status, _ = await bounded(assoc.send_n_action(ds_of(PatientID="1"), 1, STGCMT,
                                                              STGCMT_INSTANCE))
                assert status.Status == 0x0110
                await bounded(cancelled.wait())
                status, _ = await bounded(assoc.send_n_create(None, MPPS, "1.2.3.4"))
                assert status.Status == 0x0110
                release.set()
                assert (await bounded(assoc.send_c_echo())).Status == 0  # still usable
    finally:
        release.set()


async def test_handler_outliving_its_association_is_held_then_cancelled_at_shutdown() -> None:
    """Not garbage-collected ("Task was destroyed but it is pending!") once aborted."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    started = asyncio.Event()
    outcome: list[str] = []

    async def hung(event: Event) -> tuple[int, None]:
        started.set()
        try:
            await loop.create_future()  # held by nothing but this frame
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return 0x0000, None

    scp = make_scp_ae()
    scp.handler_timeout = None
    try:
        server = await bounded(scp.start_server(("127.0.0.1", 0),
                                                evt_handlers=[(evt.EVT_N_ACTION, hung)]))
        assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
        request = asyncio.ensure_future(assoc.send_n_action(ds_of(PatientID="1"), 1, STGCMT,
                                                            STGCMT_INSTANCE))
        await bounded(started.wait())
        assoc.abort()
        await _wait_until(lambda: server.connection_count == 0, "the abort to arrive")
        await asyncio.gather(request, return_exceptions=True)
        del assoc, request
        for _ in range(3):
            gc.collect()
            await asyncio.sleep(0.05)
        assert not errors, errors
        assert outcome == []  # still running: left to finish
        assert len(server.handler_tasks) == 1
        await bounded(server.shutdown(grace=0.2))
        assert outcome == ["cancelled"]
        assert not errors, errors
    finally:
        loop.set_exception_handler(previous)


_STUCK_SCRIPT = textwrap.dedent("""
    import asyncio, threading
    from aiodimse import AE, evt
    from pydicom.dataset import Dataset

    STGCMT = "1.2.840.10008.1.20.1"
    entered = threading.Event()

    def stuck(event):  # a plain handler that never returns
        entered.set()
        threading.Event().wait()

    async def main():
        scp = AE("SCP")
        scp.add_supported_context(STGCMT)
        server = await scp.start_server(("127.0.0.1", 0),
                                        evt_handlers=[(evt.EVT_N_ACTION, stuck)])
        scu = AE("SCU")
        scu.add_requested_context(STGCMT)
        assoc = await scu.associate("127.0.0.1", server.port)
        ds = Dataset()
        ds.PatientID = "1"
        request = asyncio.ensure_future(
            assoc.send_n_action(ds, 1, STGCMT, "1.2.840.10008.1.20.1.1"))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        await server.shutdown(0.5)
        await asyncio.gather(request, return_exceptions=True)
        print("shut down", flush=True)

    asyncio.run(main())
""")


def test_shutdown_and_exit_with_a_plain_handler_stuck_for_good() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _STUCK_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=30)  # a hang guard
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the process did not exit: {out} {err[-2000:]}") from None
    assert proc.returncode == 0, err[-2000:]
    assert "shut down" in out

"""``aiodimse serve`` stopping on SIGTERM while clients keep sending (issue 18)."""

from __future__ import annotations

import asyncio
import signal
import time

from pydicom.dataset import Dataset

from aiodimse import AE, AssociationError
from aiodimse.services import MPPS

from .conftest import StartServe

CLIENTS = 8


async def test_sigterm_refuses_new_requests_and_exits_within_the_grace(serve: StartServe
                                                                       ) -> None:
    srv = await serve("-aet", "ARCHIVE").ready()
    sent = 0
    succeeded = 0
    other = 0
    stop_sending = asyncio.Event()

    async def client(n: int) -> None:
        nonlocal sent, succeeded, other
        ae = AE(f"CT{n}")
        ae.add_requested_context(MPPS)
        ds = Dataset()
        ds.PerformedProcedureStepStatus = "IN PROGRESS"
        try:
            async with ae.associate("127.0.0.1", srv.port, ae_title="ARCHIVE") as assoc:
                i = 0
                while not stop_sending.is_set():
                    i += 1
                    sent += 1
                    status, _ = await asyncio.wait_for(
                        assoc.send_n_create(ds, MPPS, f"1.2.826.0.1.{n}.{i}"), 20)
                    if status.Status == 0:
                        succeeded += 1
                    else:
                        other += 1
        except AssociationError:  # aborted once its requests in flight were done
            pass

    clients = [asyncio.ensure_future(client(n)) for n in range(CLIENTS)]
    while succeeded < 50:
        await asyncio.sleep(0.05)
        assert not any(c.done() for c in clients), [c.exception() for c in clients if c.done()]
    assert srv.proc is not None
    sent_before = sent
    srv.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    await asyncio.sleep(2.0)  # the clients go on sending through the stop
    stop_sending.set()
    await asyncio.wait_for(asyncio.gather(*clients), 30)
    loop = asyncio.get_running_loop()
    returncode = await loop.run_in_executor(None, srv.stop, signal.SIGTERM, 15.0)
    stopped_after = time.monotonic() - signalled
    # Each client has one request in flight at a time: what the server acknowledged
    # was sent before the SIGTERM (one per client may have been in flight), or sent
    # just after it, before the server's loop read the signal (one more per client).
    assert succeeded <= sent_before + 2 * CLIENTS, (succeeded, sent_before, sent)
    assert returncode == 0, srv.log()[-3000:]
    assert stopped_after < 15.0  # (a hang guard: srv.stop kills after 15 s)
    log = srv.log()
    assert "] stopped" in log
    # The server's own account: what it created after the stop began were the
    # requests in flight then, at most one per association.
    after_stop = log[log.index("stopping: "):]
    assert after_stop.count("mpps created") <= CLIENTS, after_stop[-3000:]
    assert "refusing a request" in after_stop or other == 0
    assert "Traceback" not in log

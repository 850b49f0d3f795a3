"""CPU per association set-up + release on the SCP side, in process, without sockets.

    python3 benchmarks/micro_assoc.py [--requests N] [--profile]

Per cycle: a new connection from the server's protocol factory, the load
generator's A-ASSOCIATE-RQ (waiting for the A-ASSOCIATE-AC write), an
A-RELEASE-RQ (waiting for the A-RELEASE-RP write), then connection_lost. What is
left is aiodimse's own cost per association (benchmark row 3) plus the event
loop's scheduling, free of the kernel and the shared machine's network noise.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import pdus
from benchmarks._micro import micro_main
from benchmarks.micro_server import FakeTransport


async def run(requests: int, refs: int) -> float:
    from aiodimse import AE

    ae = AE("BENCH_SCP")
    ae.add_supported_context(pdus.STGCMT_CLASS)
    ae.add_supported_context(pdus.VERIFICATION)
    ae.maximum_pdu_size = pdus.MAX_PDU
    server = await ae.start_server(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    associate_rq = pdus.build_associate_rq()
    release_rq = pdus.A_RELEASE_RQ

    async def cycle() -> None:
        proto: Any = server._new_connection()
        transport = FakeTransport(loop)
        proto.connection_made(transport)
        transport.waiter = loop.create_future()
        proto.data_received(associate_rq)
        await transport.waiter
        transport.waiter = loop.create_future()
        proto.data_received(release_rq)
        await transport.waiter
        proto.connection_lost(None)

    for _ in range(200):  # warm up
        await cycle()
    start = time.process_time()
    for _ in range(requests):
        await cycle()
    elapsed = time.process_time() - start
    server.close()
    return elapsed / requests * 1e6


def main() -> int:
    return micro_main((__doc__ or "").splitlines()[0], "association", run, requests=5000)


if __name__ == "__main__":
    raise SystemExit(main())

"""CPU per request through the whole SCP path, in process, without sockets.

    python3 benchmarks/micro_server.py [--requests N] [--refs K] [--profile]
                                       [--op naction|nget|ncreate] [--replies MODE]

A fake transport stands in for the socket: the same A-ASSOCIATE-RQ and N-ACTION-RQ
bytes as the load generator go into ``data_received`` and the run waits for the
response to be written. What is left is aiodimse's own cost per request (upper
layer, DIMSE, association, handler dispatch, response) plus the event loop's
scheduling, free of the kernel and of the shared machine's network noise: the
number to optimise the library against. The network benchmarks (run.py) remain
the measure of record. ``--op`` and ``--replies`` run row 8's requests and handlers
(benchmarks/replies.py) instead.
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


class FakeTransport(asyncio.Transport):
    """Collects writes and wakes the waiter when a whole response has arrived."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.written = 0
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


OP = "naction"
REPLIES: str | None = None


def _async(func: Any) -> Any:
    async def handler(event: Any) -> Any:
        return func(event)

    return handler


async def run(requests: int, refs: int) -> float:
    from aiodimse import AE, evt

    async def on_n_action(event: Any) -> tuple[int, None]:
        return 0x0000, None

    ae = AE("BENCH_SCP")
    ae.add_supported_context(pdus.STGCMT_CLASS)
    ae.add_supported_context(pdus.VERIFICATION)
    ae.maximum_pdu_size = pdus.MAX_PDU
    bound: list[Any] = [(evt.EVT_N_ACTION, on_n_action)]
    template = pdus.n_action_rq(refs)
    associate = pdus.build_associate_rq()
    if REPLIES is not None:
        from benchmarks import replies

        ae.add_supported_context(replies.MPPS_CLASS)
        funcs = replies.handlers(REPLIES)
        bound = [(evt.EVT_N_ACTION, _async(funcs["naction"])),
                 (evt.EVT_N_GET, _async(funcs["nget"])),
                 (evt.EVT_N_CREATE, _async(funcs["ncreate"]))]
        associate = pdus.build_associate_rq(contexts=(
            (pdus.PC_STGCMT, pdus.STGCMT_CLASS), (replies.PC_MPPS, replies.MPPS_CLASS)))
        if OP != "naction":
            template = replies.n_get_rq() if OP == "nget" else replies.n_create_rq()
    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=bound)
    loop = asyncio.get_running_loop()
    proto: Any = server._new_connection()
    transport = FakeTransport(loop)
    proto.connection_made(transport)

    async def exchange(data: bytes) -> None:
        transport.waiter = loop.create_future()
        loop.call_soon(proto.data_received, data)  # a callback, as from the selector
        await transport.waiter

    await exchange(associate)
    messages = [template.render(i % 65535 + 1) for i in range(min(requests, 65535))]
    for data in messages[:200]:  # warm up
        await exchange(data)
    start = time.process_time()
    for i in range(requests):
        await exchange(messages[i % len(messages)])
    elapsed = time.process_time() - start
    server.close()
    return elapsed / requests * 1e6


def main() -> int:
    global OP, REPLIES  # noqa: PLW0603 - read by run(), which micro_main calls
    if "--op" in sys.argv:
        i = sys.argv.index("--op")
        OP = sys.argv[i + 1]
        del sys.argv[i : i + 2]
    if "--replies" in sys.argv:
        i = sys.argv.index("--replies")
        REPLIES = sys.argv[i + 1]
        del sys.argv[i : i + 2]
    return micro_main((__doc__ or "").splitlines()[0], "N-ACTION", run, requests=10000)


if __name__ == "__main__":
    raise SystemExit(main())

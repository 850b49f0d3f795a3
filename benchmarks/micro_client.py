"""CPU per ``send_n_action`` on the SCU side, in process, without sockets.

    python3 benchmarks/micro_client.py [--requests N] [--refs K] [--profile]

A fake transport answers every N-ACTION-RQ at once with a precomputed
N-ACTION-RSP (Message ID patched), so what is measured is aiodimse's own cost per
request as SCU: encoding the data set and the command, the upper layer, matching
the response and building the status Dataset. Row 7 of run.py is the network
measure of record.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import pdus
from benchmarks._micro import micro_main


class Responder(asyncio.Transport):
    """Answers each complete request by feeding the response back to the protocol."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.proto: Any = None
        self.response = pdus.n_action_rsp()
        self.ac: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        if data[0] == 0x01:  # A-ASSOCIATE-RQ
            self.loop.call_soon(self.proto.data_received, pdus.build_ac_for_rq(data))
            return
        if data[0] != 0x04:
            return
        # The command is the first PDV of the message: read its Message ID.
        msg_id = _message_id(data)
        if msg_id is not None:
            self.loop.call_soon(self.proto.data_received, self.response.render(msg_id))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 11112) if name == "peername" else default

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


_ELEM = struct.Struct("<HHI")


def _message_id(pdata: bytes) -> int | None:
    """MessageID (0000,0110) of the command in the first PDV, if this PDU carries it."""
    if not pdata[11] & 0x01:  # not a command fragment
        return None
    pos, end = 12, 6 + struct.unpack_from(">I", pdata, 2)[0]
    while pos + 8 <= end:
        group, element, length = _ELEM.unpack_from(pdata, pos)
        if group == 0 and element == 0x0110:
            return int(struct.unpack_from("<H", pdata, pos + 8)[0])
        pos += 8 + length
    return None


async def run(requests: int, refs: int) -> float:
    from aiodimse import AE
    from aiodimse.aio.protocol import DULProtocol

    loop = asyncio.get_running_loop()
    ae = AE("BENCH_SCU")
    ae.add_requested_context(pdus.STGCMT_CLASS, pdus.IMPLICIT_LE)
    transport = Responder(loop)

    async def fake_connection(factory: Any, *args: Any, **kwargs: Any) -> Any:
        proto = factory()
        transport.proto = proto
        proto.connection_made(transport)
        return transport, proto

    loop.create_connection = fake_connection  # type: ignore[method-assign,assignment]
    assoc = await ae.associate("127.0.0.1", 11112, ae_title="BENCH_SCP")
    assert isinstance(assoc.proto, DULProtocol)
    ds = pdus.stgcmt_pydicom(refs)
    for _ in range(200):  # warm up
        await assoc.send_n_action(ds, 1, pdus.STGCMT_CLASS, pdus.STGCMT_INSTANCE)
    start = time.process_time()
    for _ in range(requests):
        status, _reply = await assoc.send_n_action(ds, 1, pdus.STGCMT_CLASS, pdus.STGCMT_INSTANCE)
        if status.Status != 0:
            raise RuntimeError("unexpected status")
    return (time.process_time() - start) / requests * 1e6


def main() -> int:
    return micro_main((__doc__ or "").splitlines()[0], "send_n_action", run, requests=5000)


if __name__ == "__main__":
    raise SystemExit(main())

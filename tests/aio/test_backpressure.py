"""Read back pressure: what a peer queues past the operations window has a byte budget.

A raw peer sends many N-SET requests without waiting for the responses (it
overruns the window of 1). The server queues them; past
``AE.maximum_association_buffered`` (or, summed over associations,
``AE.maximum_server_buffered``) it stops reading that connection until the queue
drains below half the budget. Nothing is lost: every request is answered.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from aiodimse import Association, Server, evt
from aiodimse.dimse import MessageAssembler, NSetRQ, encode_command, encode_message
from aiodimse.events import Event

from ._helpers import MPPS, TIMEOUT, bounded, make_scp_ae, serving
from .test_hostile_memory import associate_rq, open_association

SIZE = 64 * 1024  # each request's data set
COUNT = 160  # 10 MiB of requests in all


def requests(count: int, first_id: int = 1) -> bytes:
    out = []
    for message_id in range(first_id, first_id + count):
        command = encode_command(
            NSetRQ(MessageID=message_id, RequestedSOPClassUID=MPPS,
                   RequestedSOPInstanceUID=f"1.2.3.{message_id}"),
            has_dataset=True,
        )
        out.append(encode_message(1, command, bytes(SIZE), 16382))
    return b"".join(out)


async def read_responses(reader: asyncio.StreamReader, count: int) -> list[int]:
    """The statuses of the next ``count`` responses."""
    assembler = MessageAssembler()
    statuses: list[int] = []
    while len(statuses) < count:
        head = await bounded(reader.readexactly(6))
        body = await bounded(reader.readexactly(struct.unpack(">I", head[2:])[0]))
        assert head[0] == 0x04, f"PDU type 0x{head[0]:02X} instead of P-DATA-TF"
        pos = 0
        while pos < len(body):
            length, context_id, control = struct.unpack_from(">IBB", body, pos)
            received = assembler.feed_pdv(context_id, control, body[pos + 6 : pos + 4 + length])
            pos += 4 + length
            if received is not None:
                message: Any = received.message
                statuses.append(int(message.Status))
    return statuses


class Gate:
    """N-SET handlers wait here until opened (requests pile up meanwhile)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.served = 0

    async def __aenter__(self) -> Gate:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.open.set()  # whatever happened, no handler waits for ever

    async def on_set(self, event: Event) -> tuple[int, None]:
        await self.open.wait()
        self.served += 1
        return 0x0000, None


def server_side(server: Server) -> list[Association]:
    return list(server.active_associations)


async def wait_paused_or_over(server: Server, count: int, bound: int) -> None:
    """Until ``count`` associations stopped being read, or one holds more than ``bound``."""
    while True:
        assocs = server_side(server)
        if any(a.in_flight > bound for a in assocs):
            return
        paused = [a for a in assocs
                  if a.proto is not None and a.proto.transport is not None
                  and not a.proto.transport.is_reading()]
        if len(paused) >= count:
            return
        await asyncio.sleep(0.01)


async def test_an_association_past_its_budget_is_not_read_until_it_drains() -> None:
    gate = Gate()
    scp = make_scp_ae()
    scp.maximum_association_buffered = 1 << 20  # 16 requests of 64 kB
    async with serving([(evt.EVT_N_SET, gate.on_set)], ae=scp) as server, gate:
        reader, writer = await open_association(server.port, associate_rq(MPPS))
        writer.write(requests(COUNT))
        bound = 16 + 8  # the budget, and what one read can bring past it
        await bounded(wait_paused_or_over(server, 1, bound))
        (assoc,) = server_side(server)
        assert assoc.in_flight <= bound
        assert server.buffered <= (1 << 20) + 8 * (SIZE + 1024)
        gate.open.set()  # it drains, is read again, and every request is answered
        statuses = await bounded(read_responses(reader, COUNT), TIMEOUT * 3)
        assert statuses == [0] * COUNT and gate.served == COUNT
        writer.close()
        await bounded(_until(lambda: server.buffered == 0))


async def test_the_server_budget_bounds_the_sum_over_associations() -> None:
    gate = Gate()
    scp = make_scp_ae()
    scp.maximum_association_buffered = 64 << 20  # never reached here
    scp.maximum_server_buffered = 2 << 20
    async with serving([(evt.EVT_N_SET, gate.on_set)], ae=scp) as server, gate:
        peers = [await open_association(server.port, associate_rq(MPPS)) for _ in range(3)]
        for index, (_reader, writer) in enumerate(peers):
            writer.write(requests(COUNT // 2, 1 + index * COUNT))
        await bounded(wait_paused_or_over(server, 3, COUNT))
        assert sum(a.in_flight for a in server_side(server)) <= 32 + 3 * 8
        assert server.buffered <= (2 << 20) + 3 * 8 * (SIZE + 1024)
        gate.open.set()
        for reader, _writer in peers:
            statuses = await bounded(read_responses(reader, COUNT // 2), TIMEOUT * 3)
            assert statuses == [0] * (COUNT // 2)
        for _reader, writer in peers:
            writer.close()
        await bounded(_until(lambda: server.buffered == 0))


async def test_what_an_aborted_association_held_is_given_back() -> None:
    gate = Gate()
    scp = make_scp_ae()
    scp.maximum_association_buffered = 1 << 20
    async with serving([(evt.EVT_N_SET, gate.on_set)], ae=scp) as server, gate:
        _reader, writer = await open_association(server.port, associate_rq(MPPS))
        writer.write(requests(COUNT))
        await bounded(wait_paused_or_over(server, 1, COUNT))
        assert server.buffered > 0
        writer.transport.abort()  # reset: queued requests are dropped with it
        # (a connection not read learns of the reset when it writes: the next answer)
        gate.open.set()
        await bounded(_until(lambda: server.connection_count == 0))
        assert server.buffered == 0


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)




async def test_partial_messages_count_against_the_server_budget() -> None:
    scp = make_scp_ae()
    scp.maximum_server_buffered = 1 << 20
    scp.network_timeout = 1.0  # the stopped, silent connections are swept after it
    async with serving(ae=scp) as server:
        command = encode_command(
            NSetRQ(MessageID=1, RequestedSOPClassUID=MPPS, RequestedSOPInstanceUID="1.2.3"),
            has_dataset=True,
        )
        # every peer sends all but the last fragment of a 3 MiB data set: 9 MiB held if
        # every connection were read to the end
        partial = encode_message(1, command, bytes(3 << 20), 16382)[: -(16382 + 6)]
        peers = [await open_association(server.port, associate_rq(MPPS)) for _ in range(3)]
        for _reader, writer in peers:
            writer.write(partial)
        await bounded(wait_paused_or_over(server, 1, 1 << 30))
        await asyncio.sleep(0.2)  # what was in flight comes in (the bound holds anyway)
        # the budget, and at most one read (256 kB) more per connection
        assert server.buffered <= (1 << 20) + 3 * (1 << 19)
        await bounded(_until(lambda: server.connection_count == 0))
        assert server.buffered == 0
        for _reader, writer in peers:
            writer.close()

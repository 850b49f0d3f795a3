"""Hostile peers on a raw socket against a real server: floods are aborted, memory stays bounded."""

from __future__ import annotations

import asyncio
import struct

import aiodimse.dimse
from aiodimse import Server
from aiodimse.dimse import NActionRQ, encode_command
from aiodimse.wire import (
    AAssociateRQ,
    PresentationContextRQ,
    UserInformation,
    encode_pdu,
)

from ._helpers import IMPLICIT_LE, STGCMT, STGCMT_INSTANCE, bounded, serving


def associate_rq(abstract_syntax: str = STGCMT, transfer_syntax: str = IMPLICIT_LE) -> bytes:
    return encode_pdu(AAssociateRQ(
        called_ae_title="TEST_SCP",
        calling_ae_title="HOSTILE",
        presentation_contexts=(PresentationContextRQ(
            context_id=1, abstract_syntax=abstract_syntax, transfer_syntaxes=(transfer_syntax,)
        ),),
        user_information=UserInformation(maximum_length=16382, implementation_class_uid="1.2.3"),
    ))


def single_pdv(control: int, data: bytes, context_id: int = 1) -> bytes:
    return struct.pack(">BxIIBB", 0x04, len(data) + 6, len(data) + 2, context_id, control) + data


async def read_pdu(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await bounded(reader.readexactly(6))
    pdu_type, length = head[0], struct.unpack(">I", head[2:])[0]
    return pdu_type, await bounded(reader.readexactly(length))


async def open_association(port: int, rq: bytes | None = None
                           ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await bounded(asyncio.open_connection("127.0.0.1", port))
    writer.write(rq or associate_rq())
    pdu_type, _ = await read_pdu(reader)
    assert pdu_type == 0x02  # A-ASSOCIATE-AC
    return reader, writer


# (read so, the module also imports, and fails its tests, where no flood rule exists)
FLOOD_FREE_FRAGMENTS: int = getattr(aiodimse.dimse, "FLOOD_FREE_FRAGMENTS", 1024)
ACTION = encode_command(
    NActionRQ(MessageID=1, RequestedSOPClassUID=STGCMT,
              RequestedSOPInstanceUID=STGCMT_INSTANCE, ActionTypeID=1),
    has_dataset=True,
)


async def test_a_flood_of_empty_pdvs_ends_the_association() -> None:
    async with serving() as server:
        _reader, writer = await open_association(server.port)
        writer.write(single_pdv(0x03, ACTION))
        empty = single_pdv(0x00, b"") * 4096  # 48 kB of wire: 4,096 fragments
        try:
            for _ in range(85):  # 4 MiB: 350,000 empty fragments
                writer.write(empty)
                await bounded(writer.drain())
        except ConnectionError:
            pass  # the server closed with our flood unread
        try:
            # the server ends it while our side still holds the connection open
            await bounded(_no_associations(server))
        finally:
            writer.close()


async def test_the_flood_abort_is_source_2_reason_0() -> None:
    async with serving() as server:
        reader, writer = await open_association(server.port)
        # the flood is judged at the fragment after the first FLOOD_FREE_FRAGMENTS:
        # sent exactly, every byte is read before the abort (no reset)
        writer.write(single_pdv(0x03, ACTION) + single_pdv(0x00, b"") * (FLOOD_FREE_FRAGMENTS + 1))
        pdu_type, body = await read_pdu(reader)
        writer.close()
        assert pdu_type == 0x07  # A-ABORT
        assert (body[2], body[3]) == (2, 0)
        await bounded(_no_associations(server))


async def _no_associations(server: Server) -> None:
    while server.connection_count:
        await asyncio.sleep(0.01)

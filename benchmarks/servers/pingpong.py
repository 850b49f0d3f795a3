"""The floor of raw transport: plain TCP ping-pong of DICOM-sized messages.

The client sends frames of any size that start with ``>II`` (frame length, reply
length); for each complete frame the server answers with that many bytes. Same byte
counts as the DICOM exchange, no DICOM at all.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import cast

from benchmarks.procs import run_loop
from benchmarks.servers._common import announce, parse_args, wait_for_stop

_FRAME = struct.Struct(">II")
MAX_FRAME = 1 << 22
_replies: dict[int, bytes] = {}


class PingPongProtocol(asyncio.Protocol):
    __slots__ = ("buf", "transport")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, n = 0, len(buf)
        out = []
        while n - pos >= 8:
            flen, rlen = _FRAME.unpack_from(buf, pos)
            if not 8 <= flen <= MAX_FRAME or rlen > MAX_FRAME:
                if self.transport is not None:
                    self.transport.close()
                return
            if pos + flen > n:
                break
            reply = _replies.get(rlen)
            if reply is None:
                reply = _replies[rlen] = bytes(rlen)
            out.append(reply)
            pos += flen
        if pos:
            del buf[:pos]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(PingPongProtocol, host, port, backlog=4096, reuse_address=True)
    announce(srv.sockets[0].getsockname()[1])
    async with srv:
        await wait_for_stop()


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    run_loop(main(args.host, args.port), args.loop)

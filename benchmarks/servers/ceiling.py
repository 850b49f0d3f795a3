"""The ceiling: a minimal raw asyncio.Protocol DICOM responder.

It parses PDU framing only: the 6-byte PDU header, PDV headers, and the few US
elements of a command set it needs (Command Field, Message ID, Command Data Set Type).
A-ASSOCIATE-RQ gets an A-ASSOCIATE-AC accepting the contexts (built once per distinct
request and cached); a complete N-ACTION-RQ / C-ECHO-RQ gets the precomputed success
response with the Message ID patched in; A-RELEASE-RQ gets A-RELEASE-RP. Data set
fragments are skipped, never copied. No real DICOM server can do less work per message.
``--replies`` (row 8): N-ACTION, N-GET and N-CREATE are answered with their reply data
sets (benchmarks/replies.py), precomputed as well.
"""

from __future__ import annotations

import argparse
import asyncio
import struct

from benchmarks import pdus
from benchmarks.procs import run_loop, set_nodelay
from benchmarks.servers._common import announce, parse_args, wait_for_stop

_HDR = struct.Struct(">BxI")
_PDV = struct.Struct(">IBB")
_US = struct.Struct("<H")
# Cap a peer-declared PDU length (the ceiling still checks what a real server must).
MAX_ACCEPTED_PDU = 1 << 20

_ac_cache: dict[bytes, bytes] = {}
_rsp_cache: dict[tuple[int, int], pdus.MessageTemplate | None] = {}
_responses = pdus.response_template  # replies.reply_rsp with --replies


class CeilingProtocol(asyncio.Protocol):
    __slots__ = ("buf", "cmd", "pending", "transport")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.cmd = bytearray()
        self.pending: tuple[int, int, int] | None = None  # (field, message id, pcid)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = set_nodelay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        n = len(buf)
        pos = 0
        out: list[bytes] = []
        while n - pos >= 6:
            ptype, plen = _HDR.unpack_from(buf, pos)
            if plen > MAX_ACCEPTED_PDU or not 1 <= ptype <= 7:
                self._abort()
                return
            end = pos + 6 + plen
            if end > n:
                break
            if ptype == 4:
                self._p_data(buf, pos + 6, end, out)
            elif ptype == 1:
                key = bytes(buf[pos:end])
                ac = _ac_cache.get(key)
                if ac is None:
                    ac = _ac_cache[key] = pdus.build_ac_for_rq(key)
                out.append(ac)
            elif ptype == 5:
                out.append(pdus.A_RELEASE_RP)
            elif ptype == 7:
                self._close()
                return
            pos = end
        if pos:
            del buf[:pos]
        if out and self.transport is not None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])

    def _p_data(self, buf: bytearray, pos: int, end: int, out: list[bytes]) -> None:
        while pos + 6 <= end:
            ilen, pcid, mch = _PDV.unpack_from(buf, pos)
            frag_end = pos + 4 + ilen
            if mch & 1:
                self.cmd += buf[pos + 6 : frag_end]
                if mch & 2:
                    field, mid, _, dst = pdus.scan_command(self.cmd)
                    self.cmd.clear()
                    if dst == pdus.NO_DATASET:
                        self._respond(field, mid, pcid, out)
                    else:
                        self.pending = (field, mid, pcid)
            elif mch & 2 and self.pending is not None:
                field, mid, pc = self.pending
                self.pending = None
                self._respond(field, mid, pc, out)
            pos = frag_end

    def _respond(self, field: int, mid: int, pcid: int, out: list[bytes]) -> None:
        key = (field, pcid)
        try:
            tpl = _rsp_cache[key]
        except KeyError:
            tpl = _rsp_cache[key] = _responses(field, pcid)
        if tpl is None:
            self._abort()
            return
        out.append(tpl.head + _US.pack(mid) + tpl.tail)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.write(pdus.A_ABORT)
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(CeilingProtocol, host, port, backlog=4096, reuse_address=True)
    announce(srv.sockets[0].getsockname()[1])
    async with srv:
        await wait_for_stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replies", action="store_true", help="answer with reply data sets")
    args = parse_args(__doc__ or "", parser)
    if args.replies:
        from benchmarks import replies

        _responses = replies.reply_rsp
    run_loop(main(args.host, args.port), args.loop)

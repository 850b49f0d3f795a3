"""C-FIND SCP contenders of benchmarks/cfind_many.py, answering from pre-built identifiers.

``--answers FILE`` is a pickle of ``{level: [Dataset, ...]}`` (the identifiers
``aiodimse serve`` answers for the same query, built once by cfind_many.py). The
handler yields every identifier of the request's Query/Retrieve Level as a pending
result, without matching anything: the most a handler over a database could do if
the answers cost nothing to find or build.

- ``--impl pynetdicom``: a plain generator handler, as pynetdicom's documentation
  writes one (checking ``event.is_cancelled``); ``--nodelay`` sets TCP_NODELAY on
  accepted sockets (its fair best: pynetdicom does not set it).
- ``--impl aiodimse``: an ``async def`` generator handler on an aiodimse ``AE``
  (the library's ceiling for C-FIND: only its networking and encoding left).
"""

from __future__ import annotations

import argparse
import pickle
import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from benchmarks.procs import run_loop
from benchmarks.servers._common import announce, parse_args, wait_for_stop

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
_PENDING = 0xFF00


def _load(path: str) -> dict[str, list[Any]]:
    with Path(path).open("rb") as f:
        answers: dict[str, list[Any]] = pickle.load(f)  # (our own file)
    return answers


def _level(event: Any) -> str:
    return str(event.identifier.QueryRetrieveLevel)


def run_pynetdicom(args: argparse.Namespace, answers: dict[str, list[Any]]) -> None:
    from pynetdicom import AE, evt
    from pynetdicom.transport import ThreadedAssociationServer

    class NoDelayServer(ThreadedAssociationServer):
        def get_request(self) -> tuple[socket.socket, Any]:
            sock, addr = super().get_request()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, addr

    def on_find(event: Any) -> Iterator[tuple[int, Any]]:
        for ds in answers.get(_level(event), []):
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield _PENDING, ds

    ae = AE(ae_title="BENCH_SCP")
    ae.add_supported_context(STUDY_ROOT_FIND)
    ae.add_supported_context(PATIENT_ROOT_FIND)
    server = ae.make_server(
        (args.host, args.port), evt_handlers=[(evt.EVT_C_FIND, on_find)],
        server_class=NoDelayServer if args.nodelay else ThreadedAssociationServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()  # as block=False
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    announce(server.server_address[1])
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.shutdown()


async def run_aiodimse(args: argparse.Namespace, answers: dict[str, list[Any]]) -> None:
    from aiodimse import AE, evt

    async def on_find(event: Any) -> AsyncIterator[tuple[int, Any]]:
        for ds in answers.get(_level(event), []):
            yield _PENDING, ds

    ae = AE(ae_title="BENCH_SCP")
    ae.add_supported_context(STUDY_ROOT_FIND)
    ae.add_supported_context(PATIENT_ROOT_FIND)
    server = await ae.start_server((args.host, args.port),
                                   evt_handlers=[(evt.EVT_C_FIND, on_find)])
    announce(server.port)
    async with server:
        await wait_for_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", choices=("pynetdicom", "aiodimse"), required=True)
    parser.add_argument("--answers", required=True, help="pickle of {level: [Dataset]}")
    parser.add_argument("--nodelay", action="store_true", help="pynetdicom: TCP_NODELAY")
    args = parse_args(__doc__ or "", parser)
    answers = _load(args.answers)
    if args.impl == "pynetdicom":
        run_pynetdicom(args, answers)
    else:
        run_loop(run_aiodimse(args, answers), args.loop)


if __name__ == "__main__":
    main()

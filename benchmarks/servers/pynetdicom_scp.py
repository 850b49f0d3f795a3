"""pynetdicom SCP contender: Storage Commitment + Verification, EVT_N_ACTION handler.

``--nodelay`` sets TCP_NODELAY on accepted sockets (its fair best; pynetdicom does not
set it). The subclassing happens here, in the benchmark script only. ``--read-all``
makes the handler decode the action information and read every referenced instance.
``--replies MODE`` (row 8) adds MPPS and benchmarks/replies.py's N-ACTION, N-GET and
N-CREATE handlers. ``maximum_associations`` is raised from its default of 10 so the concurrency rows
measure pynetdicom rather than its admission limit; nothing else is tuned.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import threading
from typing import Any

from benchmarks import replies
from benchmarks.servers._common import announce, parse_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodelay", action="store_true")
    parser.add_argument("--read-all", action="store_true")
    parser.add_argument("--max-associations", type=int, default=20000)
    parser.add_argument("--replies", choices=replies.MODES, help="row 8's handlers")
    args = parse_args(__doc__ or "", parser)

    from pynetdicom import AE, evt
    from pynetdicom.transport import ThreadedAssociationServer

    class NoDelayServer(ThreadedAssociationServer):
        def get_request(self) -> tuple[socket.socket, Any]:
            sock, addr = super().get_request()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, addr

    def on_n_action(event: Any) -> tuple[int, None]:
        return 0x0000, None

    def on_n_action_read(event: Any) -> tuple[int, None]:
        ds = event.action_information
        n = 0
        for item in ds.ReferencedSOPSequence:
            if item.ReferencedSOPClassUID and item.ReferencedSOPInstanceUID:
                n += 1
        return (0x0000 if n else 0x0110), None

    ae = AE(ae_title="BENCH_SCP")
    ae.add_supported_context("1.2.840.10008.1.20.1")
    ae.add_supported_context("1.2.840.10008.1.1")
    ae.maximum_associations = args.max_associations
    handler = on_n_action_read if args.read_all else on_n_action
    bound: list[Any] = [(evt.EVT_N_ACTION, handler)]
    if args.replies:
        ae.add_supported_context(replies.MPPS_CLASS)
        funcs = replies.handlers(args.replies)
        bound = [(evt.EVT_N_ACTION, funcs["naction"]), (evt.EVT_N_GET, funcs["nget"]),
                 (evt.EVT_N_CREATE, funcs["ncreate"])]
    server = ae.make_server(
        (args.host, args.port),
        evt_handlers=bound,
        server_class=NoDelayServer if args.nodelay else ThreadedAssociationServer,
    )
    # As AE.start_server(block=False) does it.
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    announce(server.server_address[1])
    try:
        while not stop.wait(1.0):
            pass
    finally:
        with contextlib.suppress(Exception):
            server.shutdown()


if __name__ == "__main__":
    main()

"""``aiodimse serve``: Verification, Storage Commitment and MPPS SCP with embedded storage;
``aiodimse index``: add DICOM files to the instance index.

With ``--workers N`` the first process indexes, then supervises N worker processes
that share the port (SO_REUSEPORT) and the SQLite database (WAL, leases on reports).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import evt
from ..ae import AE
from ..events import Event
from ..presentation import VERIFICATION
from ..server import Server
from ..services.mpps import MPPS, MPPSSCP
from ..services.storage_commitment import STORAGE_COMMITMENT, StorageCommitmentSCP
from ..store.db import AsyncStore, Store
from ..store.index import index_paths
from .config import ConfigError, ServeConfig, build_config, server_ssl_context

__all__ = ["add_parsers", "serve", "run_serve", "run_index"]

log = logging.getLogger("aiodimse.serve")

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


def add_parsers(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run the Verification, Storage Commitment and MPPS SCP"
    )
    p.add_argument("--config", help="TOML configuration file (flags override it)")
    p.add_argument("--port", type=int, help="port to listen on (default 11112)")
    p.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    p.add_argument("-aet", "--aet", help="our AE title (default AIODIMSE)")
    p.add_argument("--data", help="data directory holding the SQLite database")
    p.add_argument("--index-dir", action="append", metavar="ARCHIVE",
                   help="index the DICOM files under this directory at start (repeatable)")
    p.add_argument("--require-called-aet", action="store_true", default=None,
                   help="reject associations not addressed to our AE title")
    p.add_argument("--allow", action="append", metavar="AET",
                   help="accept only these calling AE titles (repeatable)")
    p.add_argument("--peer", action="append", metavar="TITLE@HOST:PORT",
                   help="an AE table entry: where reports for TITLE go (repeatable)")
    p.add_argument("--tls-cert", help="server certificate (PEM)")
    p.add_argument("--tls-key", help="server key (PEM)")
    p.add_argument("--tls-ca", help="CA (PEM) for client certificates and TLS peers")
    p.add_argument("--max-associations", type=int)
    p.add_argument("--max-pdu", type=int)
    p.add_argument("--timeout", type=float, help="connect, ACSE and DIMSE timeouts (s)")
    p.add_argument("--retry-initial", type=float, help="first report retry delay (s)")
    p.add_argument("--deadline", type=float, help="give up on a report after this (s)")
    p.add_argument("--log-level", help="DEBUG, INFO (default), WARNING, ERROR")
    p.add_argument("--workers", type=int, help="processes sharing the port (default 1)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=run_serve)

    i: argparse.ArgumentParser = sub.add_parser(
        "index", help="add the DICOM files under PATHs to the instance index"
    )
    i.add_argument("--data", required=True, help="the data directory of aiodimse serve")
    i.add_argument("paths", nargs="+", help="DICOM files or directories")
    i.set_defaults(run=run_index)


def run_index(args: argparse.Namespace) -> int:
    store = Store.in_directory(args.data)
    try:
        count = index_paths(store, args.paths, time.time())
    finally:
        store.close()
    print(f"indexed {count} instances")
    return 0


def _check_index_dirs(config: ServeConfig) -> None:
    for path in config.index_dirs:
        if not path.exists():
            log.warning("index directory %s does not exist: nothing indexed from it", path)


def _build_ae(config: ServeConfig) -> AE:
    ae = AE(config.ae_title)
    ae.maximum_associations = config.max_associations
    ae.maximum_pdu_size = config.max_pdu
    ae.acse_timeout = config.acse_timeout
    ae.dimse_timeout = config.dimse_timeout
    ae.network_timeout = config.network_timeout
    ae.connection_timeout = config.connection_timeout
    ae.require_called_aet = config.require_called_aet
    ae.require_calling_aet = list(config.allowed_calling_aets)
    return ae


class _Summary:
    """Counts for the periodic INFO line: one line per interval, not per request."""

    def __init__(self, commitment: StorageCommitmentSCP, mpps: MPPSSCP, store: AsyncStore
                 ) -> None:
        self.commitment, self.mpps, self.store = commitment, mpps, store
        self.associations = 0
        self._last: tuple[int, ...] = ()

    async def on_established(self, event: Event) -> None:
        self.associations += 1

    async def log(self, server: Server, *, always: bool = False) -> None:
        c, m = self.commitment, self.mpps
        counts = (self.associations, c.accepted, c.delivered, c.failed_attempts, c.expired,
                  m.created, m.updated)
        if counts == self._last and not always:
            return
        self._last = counts
        pending = await self.store.call(self.store.store.count_pending)
        log.info("summary associations=%d open=%d commitments=%d reports_delivered=%d "
                 "report_failures=%d reports_expired=%d reports_pending=%d "
                 "mpps_created=%d mpps_updated=%d", counts[0], server.connection_count,
                 *counts[1:5], pending, *counts[5:])

    async def run(self, server: Server, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.log(server)


async def _watch_parent(stop: asyncio.Event) -> None:
    """A worker stops when its supervisor is gone (killed), instead of lingering."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    log.warning("the supervisor (pid %d) is gone: stopping", parent)
    stop.set()


async def serve(config: ServeConfig, *, worker: bool = False) -> int:
    """Run until SIGTERM/SIGINT; then stop gracefully. Returns the exit status."""
    store = AsyncStore.in_directory(config.data)
    if not worker:  # a worker shares the database with running siblings
        pending = await store.call(store.store.reset_for_start, time.time())
        if pending:
            log.info("%d storage commitment reports pending from before", pending)
        if config.index_dirs:
            _check_index_dirs(config)
            count = await store.call(index_paths, store.store, config.index_dirs, time.time())
            log.info("indexed %d instances under %s", count,
                     ", ".join(str(p) for p in config.index_dirs))
    ae = _build_ae(config)
    for uid in (VERIFICATION, STORAGE_COMMITMENT, MPPS):
        ae.add_supported_context(uid)
    reporter = _build_ae(config)
    commitment = StorageCommitmentSCP(store, reporter, config.peers(), config.delivery,
                                      quotas=config.quotas)
    mpps = MPPSSCP(store, config.quotas)
    summary = _Summary(commitment, mpps, store)
    server = await ae.start_server(
        (config.host, config.port),
        evt_handlers=[*commitment.handlers(), *mpps.handlers(),
                      (evt.EVT_ESTABLISHED, summary.on_established)],
        ssl_context=server_ssl_context(config),
        reuse_port=worker,
    )
    await commitment.start()
    log.info("serving %s on %s:%d (data %s)", config.ae_title, config.host, server.port,
             config.data)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows' loops
            loop.add_signal_handler(sig, stop.set)
    background = [asyncio.ensure_future(summary.run(server, config.summary_interval))]
    if worker:
        background.append(asyncio.ensure_future(_watch_parent(stop)))
    try:
        await stop.wait()
        log.info("stopping: letting requests finish for up to %.0fs", config.shutdown_grace)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await server.shutdown(config.shutdown_grace)
        await commitment.stop(grace=min(config.shutdown_grace, 5.0))
        await summary.log(server, always=True)
        await store.aclose()
    log.info("stopped")
    return 0


async def _supervise(argv: Sequence[str], config: ServeConfig) -> int:
    """Index once, start ``workers`` children, forward SIGTERM/SIGINT, wait for them."""
    store = AsyncStore.in_directory(config.data)
    await store.call(store.store.reset_for_start, time.time())
    if config.index_dirs:
        _check_index_dirs(config)
        count = await store.call(index_paths, store.store, config.index_dirs, time.time())
        log.info("indexed %d instances", count)
    await store.aclose()
    child_argv = [*argv, "--workers", "1", "--worker"]
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-m", "aiodimse", *child_argv)
        for _ in range(config.workers)
    ]
    log.info("started %d workers: %s", len(procs), " ".join(str(p.pid) for p in procs))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    waits = [asyncio.ensure_future(p.wait()) for p in procs]
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([stopper, *waits], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    _done, alive = await asyncio.wait(waits, timeout=config.shutdown_grace + 10)
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    if alive:
        await asyncio.wait(alive)
    return 0 if stop.is_set() and all(p.returncode == 0 for p in procs) else 1


def run_serve(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    try:
        config = build_config(args)
    except (ConfigError, ValueError) as exc:
        print(f"aiodimse serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), format=_LOG_FORMAT, force=True)
    if config.workers > 1 and not args.worker:
        if config.port == 0:
            print("aiodimse serve: --workers needs a fixed --port", file=sys.stderr)
            return 2
        return asyncio.run(_supervise(argv, config))
    try:
        return asyncio.run(serve(config, worker=args.worker))
    except OSError as exc:  # e.g. the port is taken
        log.error("cannot serve: %s", exc)
        return 1

"""``aiodimse serve``: Verification, Storage Commitment, MPPS, Storage and Query/Retrieve
SCP with embedded storage (services, each of which the configuration may disable);
``aiodimse index``: add DICOM files to the instance index.

``--index-dir`` is scanned in the background once the server listens, then
rescanned (cli/indexing.py; commitment reports wait for the start-up scan).
With ``--workers N`` the first process indexes, and supervises N worker processes
that share the port (SO_REUSEPORT) and the SQLite database (WAL, leases on reports).
A worker that dies is restarted (after a back-off that doubles per quick death) while
the others go on serving; the supervisor gives up only on a crash loop
(``CRASH_LOOP_EXITS`` exits within ``CRASH_LOOP_WINDOW`` seconds) and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import evt
from ..ae import AE
from ..events import Event
from ..logs import configure_logging, get_logger
from ..observe import Observer, Observers
from ..server import Server
from ..services.base import Service, ServiceSet
from ..services.mpps import MPPSSCP
from ..services.query_retrieve import QueryRetrieveSCP
from ..services.storage import StorageSCP
from ..services.storage_commitment import StorageCommitmentSCP
from ..services.ups import UPSService
from ..services.ups.retention import Retention
from ..services.verification import VerificationSCP
from ..store import DB_FILENAME, Store, StoreError, open_store
from ..store.index import ScanReport, index_paths
from .checks import EXIT_USAGE
from .claims import ClaimError, DataDirLock, probe_port
from .config import (
    DUPLICATE_POLICIES,
    SERVICES,
    ConfigError,
    ServeConfig,
    build_config,
    server_ssl_context,
)
from .indexing import Indexer, scan_hold
from .loop import run as run_on_loop
from .metrics import (
    MISSING,
    MULTIPROC_ENV,
    MetricsEndpoint,
    MetricsError,
    available,
    worker_observer,
)
from .tracing import MISSING as TRACING_MISSING
from .tracing import Tracing, TracingError
from .tracing import available as tracing_available
from .ups_watch_wiring import join_ups

__all__ = ["add_parsers", "build_services", "serve", "run_serve", "run_index"]

log = get_logger("aiodimse.serve")

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"

CRASH_LOOP_EXITS = 5  # worker deaths within CRASH_LOOP_WINDOW seconds that stop it all
CRASH_LOOP_WINDOW = 60.0
RESTART_DELAY = 0.5  # first restart delay (s); doubled per quick death, up to the next
RESTART_DELAY_MAX = 10.0


_BUILT_IN = ServeConfig()


def _d(key: str, unit: str = "") -> str:
    """``(default X)``: a setting's built-in default, for ``--help`` (the flags default
    to None so that a TOML file's value shows through)."""
    value = getattr(_BUILT_IN.delivery if key in ("retry_initial", "deadline") else _BUILT_IN,
                    key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"(default {value}{unit})"


def add_parsers(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run the Verification, Storage Commitment, MPPS, Storage and "
                      "Query/Retrieve SCP",
        description="Flags override the --config file; the defaults shown are the "
                    "built-in ones, used when neither sets a value.",
    )
    p.add_argument("--config", help="TOML configuration file (flags override it; default none)")
    p.add_argument("--port", type=int, help=f"port to listen on {_d('port')}")
    p.add_argument("--host", help=f"address to listen on {_d('host')}")
    p.add_argument("-aet", "--aet", help=f"our AE title {_d('ae_title')}")
    p.add_argument("--data", help="data directory holding the SQLite database "
                                  f"{_d('data')}")
    p.add_argument("--database", metavar="URL",
                   help="the store: sqlite:///PATH or a file path (default: "
                        "aiodimse.sqlite3 in --data)")
    p.add_argument("--index-dir", action="append", metavar="ARCHIVE",
                   help="index the DICOM files under this directory, in the background "
                        "from the start (repeatable; default none)")
    p.add_argument("--rescan-interval", type=float, metavar="S",
                   help="look for new and changed files under --index-dir this often "
                        f"(0: never) {_d('rescan_interval', ' s')}")
    p.add_argument("--require-called-aet", action="store_true", default=None,
                   help="reject associations not addressed to our AE title (default off)")
    p.add_argument("--allow", action="append", metavar="AET",
                   help="accept only these calling AE titles (repeatable; default anyone)")
    p.add_argument("--peer", action="append", metavar="TITLE@HOST:PORT",
                   help="an AE table entry: where reports for TITLE go (repeatable; "
                        "default none)")
    p.add_argument("--tls-cert", help="server certificate (PEM; default none: plain TCP)")
    p.add_argument("--tls-key", help="server key (PEM; default none)")
    p.add_argument("--tls-ca", help="CA (PEM) for client certificates and TLS peers "
                                    "(default none: no client certificates)")
    p.add_argument("--max-associations", type=int, metavar="N",
                   help=f"associations at once {_d('max_associations')}")
    p.add_argument("--max-pdu", type=int, metavar="BYTES",
                   help=f"max PDU length we receive, 0: no limit {_d('max_pdu')}")
    p.add_argument("--max-associations-per-address", type=int, metavar="N",
                   help="associations one peer address may hold (0: no limit) "
                        f"{_d('max_associations_per_address')}")
    p.add_argument("--max-associations-per-ae", type=int, metavar="N",
                   help="associations one calling AE title may hold (0: no limit) "
                        f"{_d('max_associations_per_ae')}")
    p.add_argument("--max-pending", type=int, metavar="N",
                   help="connections without an A-ASSOCIATE-RQ yet (the oldest is closed) "
                        f"{_d('max_pending')}")
    p.add_argument("--max-pending-per-address", type=int, metavar="N",
                   help="such connections from one address (0: no limit) "
                        f"{_d('max_pending_per_address')}")
    p.add_argument("--artim-timeout", type=float, metavar="S",
                   help="PS3.8 ARTIM: wait for the A-ASSOCIATE-RQ, and for the close "
                        f"{_d('artim_timeout', ' s')}")
    p.add_argument("--message-timeout", type=float, metavar="S",
                   help="receiving one message, first byte to last fragment (0: off) "
                        f"{_d('message_timeout', ' s')}")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="connect, ACSE, DIMSE and message timeouts (default "
                        f"{_BUILT_IN.connection_timeout:g}, {_BUILT_IN.acse_timeout:g}, "
                        f"{_BUILT_IN.dimse_timeout:g} and {_BUILT_IN.message_timeout:g} s)")
    p.add_argument("--enable-service", action="append", choices=SERVICES, metavar="NAME",
                   help=f"run this service ({', '.join(SERVICES)}; all by default) "
                        f"though the configuration disables it (repeatable)")
    p.add_argument("--disable-service", action="append", choices=SERVICES, metavar="NAME",
                   help="do not run this service (repeatable; default none)")
    p.add_argument("--archive-dir", metavar="DIR",
                   help="where received instances are stored (default: archive in --data)")
    p.add_argument("--duplicates", choices=DUPLICATE_POLICIES,
                   help="an instance received again: replace the stored one or keep it "
                        f"{_d('duplicates')}")
    p.add_argument("--retry-initial", type=float, metavar="S",
                   help=f"first report retry delay {_d('retry_initial', ' s')}")
    p.add_argument("--deadline", type=float, metavar="S",
                   help=f"give up on a report after this {_d('deadline', ' s')}")
    p.add_argument("--log-level", help=f"DEBUG, INFO, WARNING, ERROR {_d('log_level')}")
    p.add_argument("--workers", type=int, metavar="N",
                   help=f"processes sharing the port {_d('workers')}")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on this port (needs the metrics extra; "
                        f"0: off) {_d('metrics_port')}")
    p.add_argument("--metrics-host", metavar="ADDRESS",
                   help=f"address for --metrics-port {_d('metrics_host')}")
    p.add_argument("--otel", action="store_true", default=None,
                   help="OpenTelemetry spans per association, request and commitment "
                        "report, exported as the OTEL_* environment variables say (needs "
                        "the otel extra; default off)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--run-id", help=argparse.SUPPRESS)  # the supervisor's, for its workers
    p.set_defaults(run=run_serve)

    i: argparse.ArgumentParser = sub.add_parser(
        "index", help="add the DICOM files under PATHs to the instance index"
    )
    where = i.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", help=f"the data directory of aiodimse serve {_d('data')}")
    where.add_argument("--database", metavar="URL",
                       help="the store, as serve's --database (sqlite:///PATH or a path; "
                            "default: aiodimse.sqlite3 in --data)")
    i.add_argument("--create", action="store_true",
                   help="make the database if --data has none (else that is an error)")
    i.add_argument("paths", nargs="+", help="DICOM files or directories")
    i.set_defaults(run=run_index)


def run_index(args: argparse.Namespace) -> int:
    """Exit 0 when every named path was read, 1 when one was missing or not DICOM, or
    there is no database; files inside folders that are not instances are counted,
    not fatal. 64: a database URL of an unknown scheme."""
    if args.data and not args.create and not (Path(args.data) / DB_FILENAME).is_file():
        print(f"aiodimse index: no aiodimse database in {args.data} (is --data the "
              f"directory that `aiodimse serve --data` uses? --create makes a new one)",
              file=sys.stderr)
        return 1
    try:
        store = open_store(args.database or Path(args.data) / DB_FILENAME,
                           create=args.create)
    except ValueError as exc:
        print(f"aiodimse index: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"aiodimse index: {exc}", file=sys.stderr)
        return 1
    report = ScanReport()
    asyncio.run(_index(store, args.paths, report))
    print(report.summary())
    return 0 if report.complete else 1


async def _index(store: Store, paths: Sequence[str], report: ScanReport) -> None:
    try:
        await index_paths(store, paths, time.time(), report=report)
    finally:
        await store.aclose()


def _build_ae(config: ServeConfig) -> AE:
    ae = AE(config.ae_title)
    ae.maximum_associations = config.max_associations
    ae.maximum_associations_per_address = config.max_associations_per_address or None
    ae.maximum_associations_per_ae = config.max_associations_per_ae or None
    ae.maximum_pending_connections = config.max_pending
    ae.maximum_pending_per_address = config.max_pending_per_address or None
    ae.artim_timeout = config.artim_timeout
    ae.message_timeout = config.message_timeout or None
    ae.maximum_pdu_size = config.max_pdu
    ae.acse_timeout = config.acse_timeout
    ae.dimse_timeout = config.dimse_timeout
    ae.network_timeout = config.network_timeout
    ae.connection_timeout = config.connection_timeout
    ae.require_called_aet = config.require_called_aet
    ae.require_calling_aet = list(config.allowed_calling_aets)
    ae.handler_threads = config.handler_threads
    ae.handler_timeout = config.handler_timeout or None
    ae.maximum_dataset_size = config.max_dataset_size
    ae.maximum_association_buffered = config.association_buffer
    ae.maximum_server_buffered = config.server_buffer
    return ae


class _Summary:
    """Counts for the periodic INFO line: one line per interval, not per request."""

    def __init__(self, commitment: StorageCommitmentSCP | None, mpps: MPPSSCP | None,
                 store: Store, storage: StorageSCP | None = None) -> None:
        self.commitment, self.mpps, self.store = commitment, mpps, store
        self.storage = storage
        self.associations = 0
        self._last: tuple[int, ...] = ()

    async def on_established(self, event: Event) -> None:
        self.associations += 1

    async def log(self, server: Server, *, always: bool = False) -> None:
        c, m, st = self.commitment, self.mpps, self.storage
        counts = (self.associations,
                  *((c.accepted, c.delivered, c.failed_attempts, c.expired) if c else (0,) * 4),
                  *((m.created, m.updated) if m else (0, 0)),
                  *((st.stored, st.duplicates, st.refused) if st else (0, 0, 0)))
        if counts == self._last and not always:
            return
        self._last = counts
        pending = await self.store.count_pending()
        log.info("summary associations=%d open=%d commitments=%d reports_delivered=%d "
                 "report_failures=%d reports_expired=%d reports_pending=%d "
                 "mpps_created=%d mpps_updated=%d stored=%d stored_again=%d "
                 "store_refused=%d", counts[0], server.connection_count,
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


def _stopper(server: Server, stop: asyncio.Event, grace: float) -> Callable[[], None]:
    """The SIGTERM/SIGINT handler: refuse new work at once, before any other callback."""

    def on_signal() -> None:
        if not stop.is_set():
            log.info("stopping: letting requests finish for up to %.0fs", grace)
            server.drain()
            stop.set()

    return on_signal


# How ``serve`` builds each service it can run (config.SERVICES names them): adding a
# service to ``serve`` is one line here and its name there.
_FACTORIES: dict[str, Callable[[ServeConfig, Store], Service]] = {
    "verification": lambda config, store: VerificationSCP(),
    "storage_commitment": lambda config, store: StorageCommitmentSCP(
        store, _build_ae(config), config.peers(), config.delivery, quotas=config.quotas),
    "mpps": lambda config, store: MPPSSCP(store, config.quotas),
    "storage": lambda config, store: StorageSCP(
        store, config.archive(), duplicates=config.duplicates,  # type: ignore[arg-type]
        fsync=config.fsync),
    "query_retrieve": lambda config, store: QueryRetrieveSCP(
        store, config.peers(), retrieve_aet=config.ae_title),
    "ups": lambda config, store: UPSService(  # its Watch half: join_ups
        store, quotas=config.quotas,
        retention=Retention(keep_final=config.ups_keep_final,
                            interval=config.ups_purge_interval)),
}


def build_services(config: ServeConfig, store: Store, run: str | None = None) -> ServiceSet:
    """The services ``config`` enables, composed (a handler clash raises here). The
    ``ups`` service is two Service objects, workitems and Watch, joined here. ``run``
    names this start of ``serve``, the same in each of its workers."""
    services = ServiceSet(_FACTORIES[name](config, store) for name in config.services)
    join_ups(config, store, services, _build_ae(config), run=run)
    return services


def _find(services: ServiceSet, kind: type[Service]) -> Any:
    return next((s for s in services.services if isinstance(s, kind)), None)


async def serve(config: ServeConfig, *, worker: bool = False,
                tracing: Tracing | None = None, run: str | None = None) -> int:
    """Run until SIGTERM/SIGINT; then stop gracefully. Returns the exit status.
    ``tracing``: spans for what this process serves (``--otel``); ``run``: the
    supervisor's name for this start, shared by its workers (``build_services``)."""
    store = open_store(config.database_url())
    if not worker:  # a worker shares the database with running siblings
        pending = await store.reset_for_start(time.time())
        if pending:
            log.info("%d N-EVENT-REPORTs pending from before (queued for delivery)", pending)
        # the start-up scan runs once we listen (cli/indexing.py: reports wait for it)
        await store.set_index_complete(not config.index_dirs)
    ae = _build_ae(config)
    services = build_services(config, store, run)
    commitment = _find(services, StorageCommitmentSCP)
    storage = _find(services, StorageSCP)
    if storage is not None:
        storage.configure(ae)
    if commitment is not None and config.index_dirs:
        commitment.deliverer.hold = scan_hold(store, config.delivery.deadline)
    watching: list[Observer] = []  # what the library hooks tell (aiodimse.observe)
    metrics: MetricsEndpoint | None = None
    if config.metrics_port and not worker:
        metrics = MetricsEndpoint(config.metrics_host, config.metrics_port)
        metrics.start(store)
        watching.append(metrics.observer)
    elif config.metrics_port and os.environ.get(MULTIPROC_ENV):  # the supervisor serves
        watching.append(worker_observer())
    if tracing is not None:
        watching.append(tracing.observer)
    if watching:
        ae.observer = store.observer = Observers(*watching)
        if commitment is not None:
            commitment.observer = ae.observer
    summary = _Summary(commitment, _find(services, MPPSSCP), store, storage)
    server = await services.start_server(
        ae, (config.host, config.port),
        evt_handlers=[(evt.EVT_ESTABLISHED, summary.on_established)],
        ssl_context=server_ssl_context(config),
        reuse_port=worker,
    )
    log.info("serving %s on %s:%d (data %s; services: %s)", config.ae_title, config.host,
             server.port, config.data, ", ".join(config.services) or "none")
    if storage is not None:
        log.info("storing received instances in %s (duplicates: %s)", storage.writer.root,
                 config.duplicates)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows' loops
            loop.add_signal_handler(sig, _stopper(server, stop, config.shutdown_grace))
    background = [asyncio.ensure_future(summary.run(server, config.summary_interval))]
    if worker:
        background.append(asyncio.ensure_future(_watch_parent(stop)))
    elif config.index_dirs:
        indexer = Indexer(store, config.index_dirs, config.rescan_interval, data=config.data,
                          on_complete=commitment.deliverer.wake if commitment else None)
        background.append(asyncio.ensure_future(indexer.run()))
    try:
        await stop.wait()
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        # In flight: requests (the server) and the services' own work (Storage
        # Commitment's reports), together within the grace; the server refuses
        # requests from now on.
        await services.shutdown(server, config.shutdown_grace)
        await summary.log(server, always=True)
        if metrics is not None:
            await metrics.aclose()
        await store.aclose()
    log.info("stopped")
    return 0


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class _Supervisor:
    """Keeps ``config.workers`` worker processes running until told to stop."""

    def __init__(self, argv: Sequence[str], config: ServeConfig,
                 metrics: MetricsEndpoint | None = None) -> None:
        # one run id for all: a worker's start (or restart) is no restart of the SCP
        self.argv = [*argv, "--workers", "1", "--worker", "--run-id", uuid.uuid4().hex]
        self.config = config
        self.metrics = metrics
        self.stop = asyncio.Event()
        self.crash_loop = False
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self._exits: deque[float] = deque()

    async def _keep(self, slot: int) -> None:
        """Run worker ``slot``; restart it when it dies, with a growing delay."""
        loop = asyncio.get_running_loop()
        delay = RESTART_DELAY
        while not self.stop.is_set():
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "aiodimse",
                                                        *self.argv)
            self.procs[slot] = proc
            started = loop.time()
            log.info("worker %d started: pid %d", slot, proc.pid)
            returncode = await proc.wait()
            if self.metrics is not None:
                self.metrics.worker_gone(proc.pid)
            if self.stop.is_set():
                return
            now = loop.time()
            exits = self._exits
            exits.append(now)
            while exits and now - exits[0] > CRASH_LOOP_WINDOW:
                exits.popleft()
            if len(exits) >= CRASH_LOOP_EXITS:
                log.error("worker %d (pid %d) %s: %d worker exits within %.0f s, a crash "
                          "loop: stopping", slot, proc.pid, _describe_exit(returncode),
                          len(exits), CRASH_LOOP_WINDOW)
                self.crash_loop = True
                self.stop.set()
                return
            if now - started > CRASH_LOOP_WINDOW:  # it had been running well
                delay = RESTART_DELAY
            log.warning("worker %d (pid %d) %s: restarting it in %.1f s", slot, proc.pid,
                        _describe_exit(returncode), delay)
            if self.metrics is not None:
                self.metrics.observer.worker_restarted(slot, returncode)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
            delay = min(delay * 2, RESTART_DELAY_MAX)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.stop.set)
        keepers = [asyncio.ensure_future(self._keep(slot))
                   for slot in range(self.config.workers)]
        await self.stop.wait()
        for keeper in keepers:  # (each waits for its worker, or for a restart)
            keeper.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        alive = [p for p in self.procs.values() if p.returncode is None]
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        # A worker stops within its grace plus about a second.
        waits = [asyncio.ensure_future(p.wait()) for p in alive]
        if waits:
            _done, late = await asyncio.wait(waits, timeout=self.config.shutdown_grace + 3)
            for proc in alive:
                if proc.returncode is None:
                    log.warning("worker pid %d did not stop in time: killing it", proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            if late:
                await asyncio.wait(late)
        if self.crash_loop:
            return 1
        return 0 if all(p.returncode == 0 for p in alive) else 1


async def _supervise(argv: Sequence[str], config: ServeConfig) -> int:
    """Keep ``workers`` children running, index (and rescan) meanwhile, forward
    SIGTERM/SIGINT."""
    store = open_store(config.database_url())
    await store.reset_for_start(time.time())
    await store.set_index_complete(not config.index_dirs)  # the workers' reports wait
    metrics = None
    if config.metrics_port:  # one endpoint for all workers (cli/metrics.py)
        metrics = MetricsEndpoint(config.metrics_host, config.metrics_port, supervisor=True)
        try:
            metrics.start(store)
        except BaseException:
            await store.aclose()
            raise
    indexer = None
    if config.index_dirs:  # scanned here alone, while the workers serve
        indexer = asyncio.ensure_future(
            Indexer(store, config.index_dirs, config.rescan_interval, data=config.data).run())
    try:
        return await _Supervisor(argv, config, metrics).run()
    finally:
        if indexer is not None:
            indexer.cancel()
            await asyncio.gather(indexer, return_exceptions=True)
        if metrics is not None:
            await metrics.aclose()
        await store.aclose()


def run_serve(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    """Exit status: 0 stopped by a signal, 1 could not serve (port, data directory) or
    a crash loop of workers, 64 a bad setting."""
    try:
        config = build_config(args)
    except (ConfigError, ValueError) as exc:
        print(f"aiodimse serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if config.metrics_port and not available():
        print(f"aiodimse serve: {MISSING}", file=sys.stderr)
        return 1
    if config.otel and not tracing_available():
        print(f"aiodimse serve: {TRACING_MISSING}", file=sys.stderr)
        return 1
    # -d (before or after the command) wins over the configured level
    level = "DEBUG" if getattr(args, "debug", False) else config.log_level.upper()
    configure_logging(level, config.log_format, _LOG_FORMAT, force=True)
    loop = getattr(args, "loop", "auto")
    if config.workers > 1 and not args.worker and config.port == 0:
        print("aiodimse serve: --workers needs a fixed --port", file=sys.stderr)
        return EXIT_USAGE
    lock = DataDirLock(config.data)
    tracing: Tracing | None = None
    try:
        # the supervisor checks the OTEL_* settings for its workers, which trace
        tracing = Tracing() if config.otel else None
        if not args.worker:  # the supervisor claims for its workers
            lock.acquire(config.port)
            probe_port(config.host, config.port)
        if config.workers > 1 and not args.worker:
            return run_on_loop(_supervise(argv, config), loop)
        return run_on_loop(serve(config, worker=args.worker, tracing=tracing,
                                 run=getattr(args, "run_id", None)), loop)
    except (ClaimError, StoreError, MetricsError, TracingError) as exc:
        print(f"aiodimse serve: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the port is taken, the data directory not writable
        print(f"aiodimse serve: cannot serve: {_os_problem(exc)}", file=sys.stderr)
        return 1
    finally:
        if tracing is not None:
            tracing.close()
        lock.release()


def _os_problem(exc: OSError) -> str:
    """An OSError as a person reads it: what, and the file or address at fault."""
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"

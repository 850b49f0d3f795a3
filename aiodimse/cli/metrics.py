"""``serve --metrics-port``: the Prometheus endpoint, in one process or over workers.

One process: a ``PrometheusObserver`` (aiodimse/prometheus.py) on the AE and the
Storage Commitment SCP, and prometheus_client's HTTP server (a thread) on
``metrics_host:metrics_port``.

``--workers N``: prometheus_client's multiprocess mode. The supervisor makes a
private directory, puts it in ``PROMETHEUS_MULTIPROC_DIR`` (which its workers
inherit) before anything imports prometheus_client, and serves the one endpoint:
a ``MultiProcessCollector`` adds up what every process wrote there, so a scrape
sees the whole server, and counters keep what a restarted worker had counted. A
dead worker's gauges are dropped (``mark_process_dead``). Workers count and never
listen for scrapes. The directory is removed when the supervisor stops.

prometheus_client is imported only here, lazily: without the ``metrics`` extra,
``serve`` runs as before unless ``--metrics-port`` is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from ..logs import get_logger
from ..observe import Observer, Observers

if TYPE_CHECKING:
    from ..store.interface import Store

__all__ = ["MULTIPROC_ENV", "MetricsError", "MetricsEndpoint", "available", "worker_observer",
           "MISSING"]

log = get_logger("aiodimse.serve")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PENDING_POLL = 5.0  # seconds between reads of the pending report count
MISSING = ("--metrics-port needs the prometheus_client library: "
           "pip install 'aiodimse[metrics]'")


class MetricsError(RuntimeError):
    """The metrics endpoint cannot be served (its port taken, say)."""


def available() -> bool:
    """prometheus_client can be imported (checked without importing it)."""
    return importlib.util.find_spec("prometheus_client") is not None


def worker_observer() -> Observer:
    """A worker's observer: it counts into the supervisor's multiprocess directory."""
    from prometheus_client import CollectorRegistry  # noqa: PLC0415 - optional; read after the environment

    from ..prometheus import PrometheusObserver  # noqa: PLC0415 - optional; read after the environment

    return Observers(PrometheusObserver(CollectorRegistry()))


class MetricsEndpoint:
    """The scrape endpoint and the observer feeding it (one process, or a supervisor)."""

    def __init__(self, host: str, port: int, *, supervisor: bool = False) -> None:
        self.host, self.port = host, port
        self.directory: str | None = None
        if supervisor:  # before prometheus_client is imported: it reads this then
            self.directory = tempfile.mkdtemp(prefix="aiodimse-metrics-")
            os.environ[MULTIPROC_ENV] = self.directory
        from prometheus_client import CollectorRegistry  # noqa: PLC0415 - optional; read after the environment

        from ..prometheus import PrometheusObserver  # noqa: PLC0415 - optional; read after the environment

        self.registry = CollectorRegistry()
        if self.directory is not None:
            from prometheus_client import multiprocess  # noqa: PLC0415 - optional; read after the environment

            multiprocess.MultiProcessCollector(self.registry, path=self.directory)  # type: ignore[no-untyped-call]
            # the supervisor's own counts go to the directory, as the workers' do
            self.prometheus = PrometheusObserver(CollectorRegistry())
        else:
            self.prometheus = PrometheusObserver(self.registry)
        self.observer: Observer = Observers(self.prometheus)
        self._http: Any = None
        self._poller: asyncio.Task[None] | None = None

    def start(self, store: Store | None = None) -> None:
        """Listen for scrapes; with ``store``, keep the pending report count fresh."""
        from prometheus_client import start_http_server  # noqa: PLC0415 - optional; read after the environment

        try:
            self._http, _thread = start_http_server(self.port, self.host, self.registry)
        except OSError as exc:
            self.close()
            raise MetricsError(f"cannot serve metrics on {self.host}:{self.port}: "
                               f"{exc.strerror or exc}") from exc
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        if store is not None:
            self._poller = asyncio.ensure_future(self._poll_pending(store))

    async def _poll_pending(self, store: Store) -> None:
        while True:
            try:
                self.observer.reports_pending(await store.count_pending())
            except Exception as exc:  # the store is busy or gone: next time
                log.debug("pending reports not counted: %s", exc)
            await asyncio.sleep(PENDING_POLL)

    def worker_gone(self, pid: int) -> None:
        """Drop a dead worker's gauges (its counters stay in the totals)."""
        if self.directory is not None:
            from prometheus_client import multiprocess  # noqa: PLC0415 - optional; read after the environment

            multiprocess.mark_process_dead(pid, self.directory)  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        self.close()

    def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.server_close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
            self.directory = None

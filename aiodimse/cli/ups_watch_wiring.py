"""How ``aiodimse serve`` builds the UPS Watch service (subscriptions and event
reports) beside the others, given the workitem service's ``WorkitemSource``.

One deliverer claims the report queue for every kind: when storage commitment runs,
its deliverer carries the UPS reports too (a second one would claim the other's
reports and fail them); else the UPS service has its own, with the same policy and
AE table.

``join_ups`` makes one ``ups`` service of the two halves for users: the workitem
service (UPSService: Push, Pull, Query, Watch's N-GET and C-FIND) and the Watch
service (subscriptions, event reports) are built, enabled and disabled together.
"""

from __future__ import annotations

from ..ae import AE
from ..services.base import ServiceSet
from ..services.delivery import Deliverer
from ..services.storage_commitment import StorageCommitmentSCP
from ..services.ups.events import UPSStores
from ..services.ups.hooks import WorkitemSource
from ..services.ups.service import UPSService
from ..services.ups.watch import UPSWatchService
from ..store import Store
from .config import ServeConfig

__all__ = ["join_ups", "watch_service"]


def watch_service(config: ServeConfig, store: Store, source: WorkitemSource,
                  services: ServiceSet, reporter: AE) -> UPSWatchService:
    """The UPS Watch service for ``serve`` (add it to ``services``). ``reporter``:
    the AE for associations of our own (``serve``'s ``_build_ae(config)``)."""
    stores: UPSStores = store
    commitment = next((s for s in services.services
                       if isinstance(s, StorageCommitmentSCP)), None)
    deliverer = commitment.deliverer if commitment is not None else Deliverer(
        store, reporter, config.peers(), config.delivery)
    watch = UPSWatchService(stores, source, deliverer)
    watch.status_aets = config.ups_status_aets
    return watch


def join_ups(config: ServeConfig, store: Store, services: ServiceSet, reporter: AE, *,
             run: str | None = None) -> None:
    """Add the Watch service beside ``services``' UPSService, if it has one, and join
    them: the workitem service tells the Watch side of each change (its ``events``),
    the Watch side reads workitems from it and hands it the Request UPS Cancel that
    arrives on a Watch context. ``run``: this start of ``serve`` (every worker's
    the same), which names its SCP Status Change reports (``UPSWatchService.run``)."""
    ups = next((s for s in services.services if isinstance(s, UPSService)), None)
    if ups is None:
        return
    watch = watch_service(config, store, ups, services, reporter)
    watch.request_cancel = ups.request_cancel
    if run:
        watch.run = run
    ups.events = watch
    services.add(watch)

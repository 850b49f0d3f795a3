"""``serve``'s UPS Watch wiring: the service shares storage commitment's deliverer
(one deliverer per queue) or has its own, and serves subscriptions end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from aiodimse import AE
from aiodimse.cli.config import SERVICES, PeerEntry, ServeConfig
from aiodimse.cli.serve import build_services
from aiodimse.cli.ups_watch_wiring import watch_service
from aiodimse.services import StorageCommitmentSCP
from aiodimse.services.ups import UPSService
from aiodimse.services.ups.uids import UPS_PUSH, UPS_WATCH
from aiodimse.services.ups.watch import UPSWatchService
from aiodimse.store import open_store

from ..services.ups_fakes import FakeSource, Inbox, listen, subscribe_info, workitem

WI = "1.2.826.0.1.3680043.10.9.21"
_NO_UPS = tuple(n for n in SERVICES if n != "ups")


async def test_serve_builds_one_ups_service_of_both_halves(tmp_path: Path) -> None:
    """``ups`` (on by default) is the workitem service and the Watch service joined;
    disabling ``ups`` drops both."""
    config = ServeConfig(ae_title="ARCHIVE", data=tmp_path)
    store = open_store(config.database_url())
    try:
        services = build_services(config, store)
        ups = next(s for s in services.services if isinstance(s, UPSService))
        watch = next(s for s in services.services if isinstance(s, UPSWatchService))
        commitment = next(s for s in services.services if isinstance(s, StorageCommitmentSCP))
        assert ups.events is watch and watch.source is ups
        assert watch.request_cancel == ups.request_cancel
        assert watch.deliverer is commitment.deliverer
        without = build_services(replace(config, services=_NO_UPS), store)
        assert not any(isinstance(s, (UPSService, UPSWatchService)) for s in without.services)
        alone = build_services(replace(config, services=("ups",)), store)
        watch = next(s for s in alone.services if isinstance(s, UPSWatchService))
        assert watch.deliverer.kinds.keys() == {"ups"}  # its own deliverer
    finally:
        await store.aclose()


async def test_watch_service_in_serve_shares_the_commitment_deliverer(tmp_path: Path) -> None:
    inbox = Inbox()
    ris = await listen(inbox)
    config = ServeConfig(ae_title="ARCHIVE", host="127.0.0.1", port=0, data=tmp_path,
                         ae_table={"RIS": PeerEntry("127.0.0.1", ris.port)},
                         acse_timeout=5, dimse_timeout=5, connection_timeout=5)
    store = open_store(config.database_url())
    try:
        alone = build_services(replace(config, services=("verification",)), store)
        own = watch_service(config, store, FakeSource(), alone, AE("ARCHIVE"))
        assert own.deliverer.peers.keys() == {"RIS"}
        services = build_services(replace(config, services=_NO_UPS), store)
        commitment = next(s for s in services.services if isinstance(s, StorageCommitmentSCP))
        source = FakeSource(workitem(WI))
        watch = watch_service(config, store, source, services, AE("ARCHIVE"))
        assert watch.deliverer is commitment.deliverer
        services.add(watch)
        server = await services.start_server(AE("ARCHIVE"), ("127.0.0.1", 0))
        try:
            scu = AE("RIS")
            scu.add_requested_context(UPS_WATCH)
            async with scu.associate("127.0.0.1", server.port, ae_title="ARCHIVE") as assoc:
                status, _ = await assoc.send_n_action(subscribe_info("RIS"), 3, UPS_PUSH, WI,
                                                      UPS_WATCH)
                assert int(status.Status) == 0
            await inbox.wait_for(1)
            assert inbox.reports[0][:2] == (1, WI)
        finally:
            await services.shutdown(server, 2.0)
    finally:
        await store.aclose()
        ris.close()
        await ris.wait_closed()

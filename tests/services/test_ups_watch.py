"""UPS Watch subscriptions and their event reports (PS3.4 CC.2.3, CC.2.4), over an
in-memory workitem source, delivered to listening AEs on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pydicom.dataset import Dataset

from aiodimse import AE, evt
from aiodimse.services import StorageCommitmentSCP
from aiodimse.services.delivery import Deliverer, Peer
from aiodimse.services.ups.uids import (
    FILTERED_GLOBAL_SUBSCRIPTION,
    GLOBAL_SUBSCRIPTION,
    UPS_EVENT,
    UPS_PUSH,
)
from aiodimse.services.ups.watch import UPSWatchService
from aiodimse.store.interface import UPSGlobalSubscription
from aiodimse.store.sqlite import SQLiteStore

from ..dcmtk_tools import free_port
from .ups_fakes import FAST, FakeSource, Inbox, listen, subscribe_info, watch_scp, workitem

WI1, WI2, WI3 = "1.2.826.0.1.3680043.10.9.1", "1.2.826.0.1.3680043.10.9.2", \
    "1.2.826.0.1.3680043.10.9.3"


def _states(inbox: Inbox, uid: str) -> list[str]:
    return [str(info.ProcedureStepState) for kind, inst, info in inbox.reports
            if kind == 1 and inst == uid]


async def test_workitem_subscription_gets_its_initial_report_then_each_event(
        tmp_path: Path) -> None:
    inbox = Inbox()
    ris = await listen(inbox)
    source = FakeSource(workitem(WI1), workitem(WI2))
    peers = {"RIS": Peer(host="127.0.0.1", port=ris.port)}
    try:
        async with watch_scp(tmp_path, source, peers) as scp:
            status, _ = await scp.action(3, WI1, subscribe_info("RIS"))
            assert status == 0
            await inbox.wait_for(1)
            assert inbox.reports[0][:2] == (1, WI1)
            assert inbox.reports[0][2].ProcedureStepState == "SCHEDULED"
            assert inbox.reports[0][2].InputReadinessState == "READY"
            wi = source.put(workitem(WI1, "IN PROGRESS"))
            await scp.service.state_changed(wi, None)
            progress = Dataset()
            progress.ProcedureStepProgress = 40
            wi.ProcedureStepProgressInformationSequence = [progress]
            await scp.service.progress(wi)
            request = Dataset()
            request.ReasonForCancellation = "patient left"
            request.ContactDisplayName = "Dr Who"
            await scp.service.cancel_requested(wi, request)
            station = Dataset()
            station.CodeValue, station.CodingSchemeDesignator = "ST1", "99LOCAL"
            station.CodeMeaning = "station 1"
            wi.ScheduledStationNameCodeSequence = [station]
            await scp.service.assigned(wi)
            await scp.service.state_changed(source.put(workitem(WI2, "IN PROGRESS")), None)
            await inbox.wait_for(5)
            assert [r[0] for r in inbox.reports] == [1, 1, 3, 2, 5]  # in order, WI1 only
            assert {r[1] for r in inbox.reports} == {WI1}
            assert inbox.reports[2][2].ProcedureStepProgressInformationSequence[0] \
                .ProcedureStepProgress == 40
            assert inbox.reports[3][2].ReasonForCancellation == "patient left"
            assert inbox.reports[3][2].ContactDisplayName == "Dr Who"
            assert inbox.reports[4][2].ScheduledStationNameCodeSequence[0].CodeValue == "ST1"
            assert inbox.command_classes == {UPS_PUSH}  # Push in the command (CC.3.1)
        # stopping sends SCP Status Change (4) GOING DOWN to the subscribers
        await inbox.wait_for(6)
        assert inbox.reports[-1][0] == 4
        assert inbox.reports[-1][2].SCPStatus == "GOING DOWN"
        # Type -/1 in every SCP Status Change (Table CC.2.4-1), not only RESTARTED
        assert inbox.reports[-1][2].SubscriptionListStatus == "WARM START"
        assert inbox.reports[-1][2].UnifiedProcedureStepListStatus == "WARM START"
        assert inbox.reports[-1][1] == GLOBAL_SUBSCRIPTION
    finally:
        ris.close()
        await ris.wait_closed()


async def test_global_and_filtered_global_subscriptions(tmp_path: Path) -> None:
    """Global: a report per existing workitem, then each new one; filtered: only
    those its matching keys match, now and when created."""
    every, some = Inbox(), Inbox()
    ris, ct = await listen(every, "RIS"), await listen(some, "CT_WATCH")
    source = FakeSource(workitem(WI1, WorklistLabel="CT"), workitem(WI2, WorklistLabel="MR"))
    peers = {"RIS": Peer(host="127.0.0.1", port=ris.port),
             "CT_WATCH": Peer(host="127.0.0.1", port=ct.port)}
    try:
        async with watch_scp(tmp_path, source, peers) as scp:
            assert (await scp.action(3, GLOBAL_SUBSCRIPTION, subscribe_info("RIS")))[0] == 0
            status, _ = await scp.action(3, FILTERED_GLOBAL_SUBSCRIPTION,
                                         subscribe_info("CT_WATCH", WorklistLabel="CT"))
            assert status == 0
            await every.wait_for(2)
            await some.wait_for(1)
            assert sorted(r[1] for r in every.reports) == [WI1, WI2]
            assert [r[1] for r in some.reports] == [WI1]
            await scp.service.created(source.put(workitem(WI3, WorklistLabel="CT")))
            wi4 = "1.2.826.0.1.3680043.10.9.4"
            await scp.service.created(source.put(workitem(wi4, WorklistLabel="MR")))
            await every.wait_for(4)
            await some.wait_for(2)
            # the new workitems' later events reach the subscribers they gained
            await scp.service.state_changed(source.put(
                workitem(WI3, "IN PROGRESS", WorklistLabel="CT")), None)
            await every.wait_for(5)
            await some.wait_for(3)
            assert _states(some, WI3) == ["SCHEDULED", "IN PROGRESS"]
            assert _states(every, WI3) == ["SCHEDULED", "IN PROGRESS"]
            assert _states(every, wi4) == ["SCHEDULED"]
            assert not _states(some, wi4) and not _states(some, WI2)
    finally:
        for server in (ris, ct):
            server.close()
            await server.wait_closed()


async def test_unsubscribe_and_suspend_stop_reports(tmp_path: Path) -> None:
    inbox = Inbox()
    ris = await listen(inbox)
    source = FakeSource(workitem(WI1), workitem(WI2))
    try:
        async with watch_scp(tmp_path, source,
                             {"RIS": Peer(host="127.0.0.1", port=ris.port)}) as scp:
            assert (await scp.action(3, GLOBAL_SUBSCRIPTION, subscribe_info("RIS")))[0] == 0
            await inbox.wait_for(2)
            # suspended: no new workitems, the ones it has still report
            assert (await scp.action(5, GLOBAL_SUBSCRIPTION, subscribe_info("RIS")))[0] == 0
            await scp.service.created(source.put(workitem(WI3)))
            await scp.service.state_changed(source.put(workitem(WI1, "IN PROGRESS")), None)
            await inbox.wait_for(3)
            assert _states(inbox, WI1) == ["SCHEDULED", "IN PROGRESS"]
            assert not _states(inbox, WI3)
            # unsubscribing from a workitem ends its reports only
            assert (await scp.action(4, WI1, subscribe_info("RIS")))[0] == 0
            await scp.service.state_changed(source.put(workitem(WI1, "COMPLETED")), None)
            await scp.service.state_changed(source.put(workitem(WI2, "IN PROGRESS")), None)
            await inbox.wait_for(4)
            assert _states(inbox, WI1) == ["SCHEDULED", "IN PROGRESS"]
            assert _states(inbox, WI2) == ["SCHEDULED", "IN PROGRESS"]
            # unsubscribing from the global instance ends every subscription of the AE
            assert (await scp.action(4, GLOBAL_SUBSCRIPTION, subscribe_info("RIS")))[0] == 0
            assert await scp.store.ups_subscribers(WI2) == []
            assert await scp.store.ups_global_subscriptions() == []
            await scp.service.state_changed(source.put(workitem(WI2, "COMPLETED")), None)
            assert await scp.store.ups_subscriber_aets() == []
            await asyncio.sleep(0.3)  # nothing more comes (nothing was queued either)
            assert len(inbox.reports) == 4
    finally:
        ris.close()
        await ris.wait_closed()


async def test_refusals_carry_the_cc_statuses(tmp_path: Path) -> None:
    source = FakeSource(workitem(WI1))
    async with watch_scp(tmp_path, source,
                         {"RIS": Peer(host="127.0.0.1", port=free_port())}) as scp:
        assert (await scp.action(3, WI2, subscribe_info("RIS")))[0] == 0xC307
        assert (await scp.action(3, WI1, subscribe_info("NOBODY")))[0] == 0xC308
        no_ae = Dataset()
        no_ae.DeletionLock = "FALSE"
        status, ds = await scp.action(3, WI1, no_ae)
        assert status == 0x0115 and int(ds.OffendingElement) == 0x00741234
        bad = subscribe_info("RIS")
        bad.DeletionLock = "MAYBE"
        assert (await scp.action(3, WI1, bad))[0] == 0x0115
        del bad.DeletionLock
        assert (await scp.action(3, WI1, bad))[0] == 0x0115
        assert (await scp.action(5, WI1, subscribe_info("RIS")))[0] == 0xC314
        assert (await scp.action(4, WI2, subscribe_info("RIS")))[0] == 0xC307
        assert (await scp.action(9, WI1, subscribe_info("RIS")))[0] == 0x0123
        assert (await scp.action(2, WI1, subscribe_info("RIS")))[0] == 0x0123  # not ours
        assert await scp.store.ups_subscriber_aets() == []


async def test_deletion_lock_is_held_until_unsubscribed_and_survives_restart(
        tmp_path: Path) -> None:
    source = FakeSource(workitem(WI1), workitem(WI2))
    peers = {"RIS": Peer(host="127.0.0.1", port=free_port())}
    async with watch_scp(tmp_path, source, peers) as scp:
        assert (await scp.action(3, WI1, subscribe_info("RIS", lock=True)))[0] == 0
        assert (await scp.action(3, WI2, subscribe_info("RIS", lock=False)))[0] == 0
        assert await scp.service.deletion_locked(WI1)
        assert not await scp.service.deletion_locked(WI2)
    async with watch_scp(tmp_path, source, peers) as scp:
        assert await scp.service.deletion_locked(WI1)  # kept in the store
        assert (await scp.action(4, WI1, subscribe_info("RIS")))[0] == 0
        assert not await scp.service.deletion_locked(WI1)
        # a global subscription with a lock locks the workitems it gains
        assert (await scp.action(3, GLOBAL_SUBSCRIPTION,
                                 subscribe_info("RIS", lock=True)))[0] == 0
        assert await scp.service.deletion_locked(WI1)
        assert await scp.service.deletion_locked(WI2)
        await scp.service.created(source.put(workitem(WI3)))
        assert await scp.service.deletion_locked(WI3)


async def test_a_subscriber_down_gets_its_reports_in_order_when_it_comes_up(
        tmp_path: Path) -> None:
    port = free_port()
    source = FakeSource(workitem(WI1))
    async with watch_scp(tmp_path, source, {"RIS": Peer(host="127.0.0.1", port=port)}) as scp:
        assert (await scp.action(3, WI1, subscribe_info("RIS")))[0] == 0
        for state in ("IN PROGRESS", "COMPLETED"):
            await scp.service.state_changed(source.put(workitem(WI1, state)), None)
        await asyncio.sleep(0.3)  # attempts fail meanwhile (nobody listens)
        assert scp.service.reports.failed_attempts >= 1
        inbox = Inbox()
        inbox.refuse = 1  # and the first attempt once up is refused: order still kept
        ris = await listen(inbox, port=port)
        try:
            await inbox.wait_for(3)
            assert _states(inbox, WI1) == ["SCHEDULED", "IN PROGRESS", "COMPLETED"]
            # the refused one's association, then one for all three
            assert inbox.associations == 2
        finally:
            ris.close()
            await ris.wait_closed()


async def test_pending_reports_survive_a_restart(tmp_path: Path) -> None:
    """Reports queued for a subscriber that was down are sent, in order, by the
    next start on the same database file (after ``reset_for_start``)."""
    port = free_port()
    source = FakeSource(workitem(WI1))
    peers = {"RIS": Peer(host="127.0.0.1", port=port)}
    async with watch_scp(tmp_path, source, peers) as scp:
        assert (await scp.action(3, WI1, subscribe_info("RIS")))[0] == 0
        for state in ("IN PROGRESS", "COMPLETED"):
            await scp.service.state_changed(source.put(workitem(WI1, state)), None)
        assert await scp.store.count_pending() >= 3
    inbox = Inbox()
    ris = await listen(inbox, port=port)
    try:
        store = SQLiteStore.in_directory(tmp_path)
        assert await store.reset_for_start(0) >= 3
        await store.aclose()
        async with watch_scp(tmp_path, source, peers):
            await inbox.wait_for(5)
            assert _states(inbox, WI1) == ["SCHEDULED", "IN PROGRESS", "COMPLETED"]
            status = [info.SCPStatus for kind, _i, info in inbox.reports if kind == 4]
            # the GOING DOWN of the first run (queued, undelivered), then RESTARTED
            assert status == ["GOING DOWN", "RESTARTED"]
            restarted = inbox.of(4)[-1][2]
            assert restarted.SubscriptionListStatus == "WARM START"
            assert restarted.UnifiedProcedureStepListStatus == "WARM START"
    finally:
        ris.close()
        await ris.wait_closed()


async def test_a_shared_deliverer_runs_until_its_last_service_stops(tmp_path: Path) -> None:
    """Storage commitment and UPS share one deliverer (one claims the queue for both
    kinds): the commitment service stopping first leaves UPS reports flowing."""
    inbox = Inbox()
    ris = await listen(inbox)
    store = SQLiteStore.in_directory(tmp_path)
    peers = {"RIS": Peer(host="127.0.0.1", port=ris.port)}
    commitment = StorageCommitmentSCP(store, AE("UPS_SCP"), peers, FAST)
    source = FakeSource(workitem(WI1))
    watch = UPSWatchService(store, source, commitment.deliverer)
    try:
        await commitment.start()
        await watch.start()
        await store.ups_subscribe("RIS", WI1, False)
        await commitment.stop(1.0)
        await watch.state_changed(source.put(workitem(WI1, "IN PROGRESS")), None)
        await inbox.wait_for(1)
        assert _states(inbox, WI1) == ["IN PROGRESS"]
        await watch.stop(1.0)
        await inbox.wait_for(2)
        assert inbox.reports[-1][2].SCPStatus == "GOING DOWN"
    finally:
        await store.aclose()
        ris.close()
        await ris.wait_closed()


async def test_reports_go_only_where_our_scp_role_is_accepted(tmp_path: Path) -> None:
    """The deliverer proposes the SCP role of UPS Event for itself (it sends the
    reports); a receiver that does not accept that role gets none."""
    inbox = Inbox()
    ae = AE("RIS")
    ae.add_supported_context(UPS_EVENT)  # the default answer: requestor SCU only
    ris = await ae.start_server(("127.0.0.1", 0),
                                evt_handlers=[(evt.EVT_N_EVENT_REPORT, inbox.on_report)])
    source = FakeSource(workitem(WI1))
    try:
        async with watch_scp(tmp_path, source,
                             {"RIS": Peer(host="127.0.0.1", port=ris.port)}) as scp:
            assert (await scp.action(3, WI1, subscribe_info("RIS")))[0] == 0
            for _ in range(200):
                if scp.service.reports.failed_attempts:
                    break
                await asyncio.sleep(0.02)
            assert scp.service.reports.failed_attempts >= 1
            assert inbox.reports == []
            assert await scp.store.count_pending() == 1
    finally:
        ris.close()
        await ris.wait_closed()


async def test_a_lock_taken_or_released_elsewhere_is_known_at_once(tmp_path: Path) -> None:
    """Another worker or node (here: the store written directly) subscribed with a
    deletion lock, then unsubscribed: the service asks the store, so it knows each
    at once."""
    source = FakeSource(workitem(WI1))
    async with watch_scp(tmp_path, source,
                         {"RIS": Peer(host="127.0.0.1", port=free_port())}) as scp:
        await scp.store.ups_subscribe("RIS", WI1, True)
        assert await scp.service.deletion_locked(WI1)
        assert await scp.store.ups_unsubscribe("RIS", WI1)
        assert not await scp.service.deletion_locked(WI1)


async def test_the_workers_of_one_start_queue_one_scp_status_change(tmp_path: Path) -> None:
    """Two workers of one ``serve`` (one run id, one database) each starting: each
    subscriber is sent one RESTARTED, leased to the worker that queued it; a new
    start (another run id) sends it again."""
    first, second = (SQLiteStore.in_directory(tmp_path) for _ in range(2))
    peers = {aet: Peer(host="127.0.0.1", port=free_port()) for aet in ("RIS", "QA")}
    workers = [UPSWatchService(store, FakeSource(), Deliverer(store, AE("UPS_SCP"), peers, FAST))
               for store in (first, second)]
    try:
        await first.ups_subscribe("RIS", WI1, False)
        await first.ups_subscribe_global(UPSGlobalSubscription(aet="QA", deletion_lock=False),
                                         [])
        workers[1].run = workers[0].run
        keys = await workers[0].scp_status("RESTARTED")
        assert len(keys) == 2 and await workers[1].scp_status("RESTARTED") == []
        claimed = await second.claim_due(workers[1].deliverer.owner, time.time(), 60, 10)
        assert claimed == []  # leased to the first worker, which sends them
        mine = await first.claim_due(workers[0].deliverer.owner, time.time(), 60, 10)
        assert sorted(d.key for d in mine) == sorted(keys)
        workers[1].run = "another start"
        assert len(await workers[1].scp_status("RESTARTED")) == 2
    finally:
        await first.aclose()
        await second.aclose()


async def test_scp_status_goes_to_the_fallback_list_too(tmp_path: Path) -> None:
    """PS3.4 CC.2.4.3: every AE of the fallback list is told, subscribed or not, and
    an AE both listed and subscribed once."""
    store = SQLiteStore.in_directory(tmp_path)
    peers = {aet: Peer(host="127.0.0.1", port=free_port()) for aet in ("RIS", "QA")}
    watch = UPSWatchService(store, FakeSource(), Deliverer(store, AE("UPS_SCP"), peers, FAST))
    watch.status_aets = ("QA", "RIS")
    try:
        await store.ups_subscribe("RIS", WI1, False)
        keys = await watch.scp_status("RESTARTED")
        queued = await store.claim_due(watch.deliverer.owner, time.time(), 60, 10)
        assert sorted(d.destination for d in queued) == ["QA", "RIS"]
        assert sorted(d.key for d in queued) == sorted(keys)
    finally:
        await store.aclose()

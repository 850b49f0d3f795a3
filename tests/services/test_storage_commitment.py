"""StorageCommitmentSCP in-process: validation, the report's content, retries, expiry."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, Event, evt
from aiodimse.services import (
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    DeliveryPolicy,
    Peer,
    build_report,
)

from ._helpers import commit_request, running_scp

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


def test_build_report() -> None:
    refs = [(CT, "1.1"), (CT, "1.2"), (CT, "1.3")]
    event_type, info = build_report("9.9", refs, {"1.1": CT, "1.3": MR}, "ARCHIVE")
    assert event_type == 2
    assert info.TransactionUID == "9.9"
    assert info.RetrieveAETitle == "ARCHIVE"
    assert [r.ReferencedSOPInstanceUID for r in info.ReferencedSOPSequence] == ["1.1"]
    assert [(f.ReferencedSOPInstanceUID, f.FailureReason) for f in info.FailedSOPSequence] == [
        ("1.2", 0x0112),
        ("1.3", 0x0119),  # indexed under another SOP class
    ]
    event_type, info = build_report("9.9", refs[:1], {"1.1": CT})
    assert event_type == 1
    assert "FailedSOPSequence" not in info and "RetrieveAETitle" not in info
    event_type, info = build_report("9.9", refs[1:2], {})
    assert event_type == 2 and "ReferencedSOPSequence" not in info


async def _action(port: int, ds: Dataset, action: int = 1,
                  instance: str = STORAGE_COMMITMENT_INSTANCE) -> Dataset:
    ae = AE("MODALITY")
    ae.add_requested_context(STORAGE_COMMITMENT)
    async with ae.associate("127.0.0.1", port, ae_title="ARCHIVE") as assoc:
        status, _ = await assoc.send_n_action(ds, action, STORAGE_COMMITMENT, instance)
    return status


async def test_requests_that_are_refused(tmp_path: Path) -> None:
    async with running_scp(tmp_path) as scp:
        port = scp.server.port
        no_tx = commit_request("", [(CT, "1.2")])
        assert (await _action(port, no_tx)).Status == 0x0120
        no_refs = Dataset()
        no_refs.TransactionUID = "1.2.3"
        assert (await _action(port, no_refs)).Status == 0x0120
        half = commit_request("1.2.4", [(CT, "")])
        assert (await _action(port, half)).Status == 0x0120
        good = commit_request(str(generate_uid()), [(CT, "1.2")])
        assert (await _action(port, good, instance="1.2.3")).Status == 0x0112
        assert (await _action(port, good, action=2)).Status == 0x0123


async def test_report_waits_for_scp_role_then_expires(tmp_path: Path) -> None:
    """A peer that refuses the SCP role gets no report; retries stop at the deadline."""
    refuser = AE("MODALITY")
    refuser.add_supported_context(STORAGE_COMMITMENT)  # default: requestor may not be SCP
    peer_server = await refuser.start_server(("127.0.0.1", 0))
    async with peer_server:
        policy = DeliveryPolicy(same_association=False, retry_initial=0.1, deadline=1.0)
        peers = {"MODALITY": Peer(host="127.0.0.1", port=peer_server.port)}
        async with running_scp(tmp_path, peers, policy) as scp:
            transaction = str(generate_uid())
            status = await _action(scp.server.port, commit_request(transaction, [(CT, "1")]))
            assert status.Status == 0
            store = scp.store

            async def state() -> tuple[str, int, str | None] | None:
                return await store.commitment_state(transaction)

            deadline = time.monotonic() + 10
            while (current := await state()) is not None and current[0] == "pending":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert current is not None
            state_name, attempts, error = current
            assert state_name == "expired"
            assert attempts >= 3
            assert error is not None and "SCP role" in error


async def test_unknown_ae_stays_pending_and_stop_keeps_it(tmp_path: Path) -> None:
    policy = DeliveryPolicy(same_association=False, retry_initial=0.05)
    transaction = str(generate_uid())
    async with running_scp(tmp_path, {}, policy) as scp:
        assert (await _action(scp.server.port, commit_request(transaction, [(CT, "1")]))
                ).Status == 0
        store = scp.store
        deadline = time.monotonic() + 10
        while True:
            state = await store.commitment_state(transaction)
            if state is not None and state[1] >= 2:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert state[0] == "pending"
        assert state[2] == "AE 'MODALITY' is not in the AE table"
    # After stop, a new deliverer with the AE known picks it up.
    got: asyncio.Queue[str] = asyncio.Queue()
    receiver = AE("MODALITY")
    receiver.add_supported_context(STORAGE_COMMITMENT, scp_role=True)

    async def on_report(event: Event) -> tuple[int, None]:
        await got.put(str(event.event_information.TransactionUID))
        return 0, None

    peer_server = await receiver.start_server(
        ("127.0.0.1", 0), evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
    )
    async with peer_server:
        peers = {"MODALITY": Peer(host="127.0.0.1", port=peer_server.port)}
        async with running_scp(tmp_path, peers, policy) as scp:
            assert await asyncio.wait_for(got.get(), 10) == transaction
            assert scp.commitment.owner


async def test_require_scp_role_false_reports_to_a_peer_that_ignores_it(
    tmp_path: Path,
) -> None:
    """Liberal mode for peers that drop the role item (dcm4che #463)."""
    got: asyncio.Queue[str] = asyncio.Queue()
    lax = AE("MODALITY")
    lax.add_supported_context(STORAGE_COMMITMENT)  # answers no SCP role

    async def on_report(event: Event) -> tuple[int, None]:
        await got.put(str(event.event_information.TransactionUID))
        return 0, None

    peer_server = await lax.start_server(
        ("127.0.0.1", 0), evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
    )
    async with peer_server:
        policy = DeliveryPolicy(same_association=False, require_scp_role=False)
        peers = {"MODALITY": Peer(host="127.0.0.1", port=peer_server.port)}
        async with running_scp(tmp_path, peers, policy) as scp:
            transaction = str(generate_uid())
            status = await _action(scp.server.port, commit_request(transaction, [(CT, "1")]))
            assert status.Status == 0
            assert await asyncio.wait_for(got.get(), 10) == transaction

"""Services composed on one server: each gets its own requests, clashes raise at composition.

Over real associations on loopback, through the library's SCU.
"""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, evt
from aiodimse.events import Event
from aiodimse.handlers import Binding, HandlerConflictError
from aiodimse.services import (
    MPPS,
    MPPSSCP,
    STORAGE_COMMITMENT,
    Service,
    ServiceSet,
    SOPClass,
    StorageCommitmentSCP,
    VerificationSCP,
)
from aiodimse.store.sqlite import SQLiteStore

from .example_service import MEDIA_CREATION, MediaCreationSCP

DOCS = Path(__file__).resolve().parents[2] / "docs" / "internals.md"


def _in_progress() -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    return ds


async def test_mpps_and_another_n_create_class_each_get_their_own_requests(
        tmp_path: Path) -> None:
    store = SQLiteStore.in_directory(tmp_path)
    mpps, media = MPPSSCP(store), MediaCreationSCP()
    services = ServiceSet([VerificationSCP(), mpps, media])
    server = await services.start_server(AE("ARCHIVE"), ("127.0.0.1", 0))
    try:
        scu = AE("MODALITY")
        for uid in (MPPS, MEDIA_CREATION):
            scu.add_requested_context(uid)
        async with scu.associate("127.0.0.1", server.port, ae_title="ARCHIVE") as assoc:
            request = Dataset()
            request.LabelUsingInformationExtractedFromInstances = "YES"
            status, _ = await assoc.send_n_create(request, MEDIA_CREATION)
            assert status.Status == 0x0000
            media_uid = str(status.AffectedSOPInstanceUID)
            status, _ = await assoc.send_n_create(_in_progress(), MPPS)
            assert status.Status == 0x0000
            mpps_uid = str(status.AffectedSOPInstanceUID)
            # Each reached its own service: MPPS stored only its step, the media
            # service recorded only its request.
            assert list(media.requests) == [media_uid]
            assert mpps.created == 1
            status, reply = await assoc.send_n_get(None, MPPS, mpps_uid)
            assert status.Status == 0x0000 and reply is not None
            assert reply.PerformedProcedureStepStatus == "IN PROGRESS"
            status, _ = await assoc.send_n_get(None, MPPS, media_uid)
            assert status.Status == 0x0112  # not an MPPS instance
            status, reply = await assoc.send_n_get(None, MEDIA_CREATION, media_uid)
            assert status.Status == 0x0000 and reply is not None
            assert reply.ExecutionStatus == "IDLE"
            # An MPPS N-CREATE the media service would accept (no status) is MPPS's
            # to refuse: 0x0106, and the media service saw nothing.
            status, _ = await assoc.send_n_create(request, MPPS)
            assert status.Status == 0x0106
            assert list(media.requests) == [media_uid]
    finally:
        await services.shutdown(server, 1.0)
        await store.aclose()


class _OtherMPPS(Service):
    """Claims MPPS N-CREATE too: composing it beside MPPSSCP is a mistake."""

    name = "other_mpps"
    sop_classes = (SOPClass(MPPS),)

    async def on_n_create(self, event: Event) -> tuple[int, None]:
        return 0x0000, None

    def handlers(self) -> list[Binding]:
        return [Binding(evt.EVT_N_CREATE, self.on_n_create, MPPS)]


async def test_two_services_claiming_the_same_class_and_event_raise_when_composed(
        tmp_path: Path) -> None:
    store = SQLiteStore.in_directory(tmp_path)
    try:
        mpps = MPPSSCP(store)
        services = ServiceSet([mpps, MediaCreationSCP()])
        with pytest.raises(HandlerConflictError) as caught:
            services.add(_OtherMPPS())
        message = str(caught.value)
        assert "EVT_N_CREATE" in message and MPPS in message
        assert "'mpps'" in message and "'other_mpps'" in message
        assert caught.value.event is evt.EVT_N_CREATE and caught.value.abstract_syntax == MPPS
        assert [s.name for s in services.services] == ["mpps", "media_creation"]  # unchanged
        with pytest.raises(HandlerConflictError):
            ServiceSet([MPPSSCP(store), MPPSSCP(store)])
        with pytest.raises(ValueError, match="added already"):
            ServiceSet([mpps, mpps])
        # Extra handlers given to start_server clash the same way, before listening.
        ae = AE("ARCHIVE")
        with pytest.raises(HandlerConflictError):
            await services.start_server(ae, ("127.0.0.1", 0), evt_handlers=[
                Binding(evt.EVT_N_SET, _OtherMPPS().on_n_create, MPPS)])
        assert ae.supported_contexts == []
    finally:
        await store.aclose()


def test_a_service_binds_only_for_the_sop_classes_it_declares() -> None:
    class Undeclared(_OtherMPPS):
        name = "undeclared"
        sop_classes = (SOPClass(MEDIA_CREATION),)

    class EventWide(_OtherMPPS):
        name = "event_wide"

        def handlers(self) -> list[Binding]:
            return [Binding(evt.EVT_N_CREATE, self.on_n_create)]

    with pytest.raises(ValueError, match=f"undeclared: EVT_N_CREATE is bound for {MPPS}"):
        ServiceSet([Undeclared()])
    with pytest.raises(ValueError, match="every SOP class"):
        ServiceSet([EventWide()])


async def test_the_declaration_becomes_the_servers_contexts_and_roles(tmp_path: Path) -> None:
    class Both(MediaCreationSCP):
        name = "both"
        sop_classes = (SOPClass(MEDIA_CREATION, scp=True, scu=True,
                                transfer_syntaxes=("1.2.840.10008.1.2.1",)),)

    class ReportsOnly(Service):  # receives N-EVENT-REPORTs from SCPs that call it
        name = "reports"
        sop_classes = (SOPClass(STORAGE_COMMITMENT, scp=False, scu=True),)

        def handlers(self) -> list[Binding]:
            return []

    ae = AE("ARCHIVE")
    ServiceSet([Both(), ReportsOnly(), VerificationSCP()]).add_contexts(ae)
    contexts = {c.abstract_syntax: c for c in ae.supported_contexts}
    media = contexts[MEDIA_CREATION]
    assert media.transfer_syntaxes == ("1.2.840.10008.1.2.1",)
    assert media.scu_role and media.scp_role
    stgcmt = contexts[STORAGE_COMMITMENT]
    assert stgcmt.scp_role and not stgcmt.scu_role
    assert "1.2.840.10008.1.1" in contexts


async def test_storage_commitment_and_mpps_are_services_of_the_new_shape(
        tmp_path: Path) -> None:
    store = SQLiteStore.in_directory(tmp_path)
    try:
        commitment = StorageCommitmentSCP(store, AE("ARCHIVE"), {})
        mpps = MPPSSCP(store)
        assert [c.uid for c in commitment.sop_classes] == [STORAGE_COMMITMENT]
        assert [c.uid for c in mpps.sop_classes] == [MPPS]
        assert {(b.event, b.abstract_syntax) for b in commitment.handlers()} == {
            (evt.EVT_N_ACTION, STORAGE_COMMITMENT)}
        assert {(b.event, b.abstract_syntax) for b in mpps.handlers()} == {
            (evt.EVT_N_CREATE, MPPS), (evt.EVT_N_SET, MPPS), (evt.EVT_N_GET, MPPS)}
        ServiceSet([commitment, mpps])  # they compose without a clash
    finally:
        await store.aclose()


def test_the_docs_show_the_code_the_tests_run() -> None:
    """Every Python block of "How to add a service" is code that runs (here, or serve's)."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## How to add a service", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 3
    root = DOCS.parents[1]
    sources = [Path(__file__), Path(__file__).parent / "example_service.py",
               root / "aiodimse" / "cli" / "serve.py"]
    texts = [p.read_text(encoding="utf-8") for p in sources]
    for block in blocks:
        assert any(block in text for text in texts), block


async def test_the_example_service_tested_in_a_pair() -> None:
    services = ServiceSet([MediaCreationSCP()])
    server = await services.start_server(AE("MEDIA_SCP"), ("127.0.0.1", 0))
    try:
        scu = AE("SCU")
        scu.add_requested_context(MEDIA_CREATION)
        async with scu.associate("127.0.0.1", server.port, ae_title="MEDIA_SCP") as assoc:
            status, _ = await assoc.send_n_create(Dataset(), MEDIA_CREATION)
            assert status.Status == 0x0120  # no attributes
            uid = str(generate_uid())
            request = Dataset()
            request.LabelUsingInformationExtractedFromInstances = "YES"
            status, _ = await assoc.send_n_create(request, MEDIA_CREATION, uid)
            assert status.Status == 0x0000
            status, _ = await assoc.send_n_create(request, MEDIA_CREATION, uid)
            assert status.Status == 0x0111  # exists already
            status, reply = await assoc.send_n_get(None, MEDIA_CREATION, uid)
            assert status.Status == 0x0000 and reply is not None
            assert reply.ExecutionStatus == "IDLE"
    finally:
        await services.shutdown(server, grace=1.0)


class _Lifecycle(Service):
    """Records its start and stop in a shared journal; ``fail`` makes start raise."""

    def __init__(self, name: str, journal: list[str], fail: bool = False) -> None:
        self.name = name
        self.journal = journal
        self.fail = fail

    def handlers(self) -> list[Binding]:
        return []

    async def start(self) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} cannot start")
        self.journal.append(f"start {self.name}")

    async def stop(self, grace: float = 5.0) -> None:
        self.journal.append(f"stop {self.name} {grace}")


async def test_services_start_with_the_server_and_stop_with_it() -> None:
    journal: list[str] = []
    services = ServiceSet([_Lifecycle("a", journal), _Lifecycle("b", journal),
                           VerificationSCP()])
    server = await services.start_server(AE("ARCHIVE"), ("127.0.0.1", 0), ae_title="OTHER")
    assert journal == ["start a", "start b"]
    scu = AE("SCU")
    scu.add_requested_context("1.2.840.10008.1.1")
    async with scu.associate("127.0.0.1", server.port, ae_title="OTHER") as assoc:
        assert (await assoc.send_c_echo()).Status == 0x0000  # Verification: no handler
    await services.shutdown(server, 0.5)
    assert sorted(journal[2:]) == ["stop a 0.5", "stop b 0.5"]
    await services.stop()  # stopped already: nothing is stopped twice
    assert len(journal) == 4


async def test_a_service_failing_to_start_stops_the_others_and_the_server() -> None:
    journal: list[str] = []
    services = ServiceSet([_Lifecycle("a", journal), _Lifecycle("b", journal, fail=True),
                           _Lifecycle("c", journal)])
    with socket.socket() as probe:  # a port free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    with pytest.raises(RuntimeError, match="b cannot start"):
        await services.start_server(AE("ARCHIVE"), ("127.0.0.1", port))
    assert journal == ["start a", "stop a 0"]  # c never started; a stopped at once
    with pytest.raises(OSError):  # the server listened, and was closed
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)

"""Association establishment: rejection reasons, user identity, roles, notifications."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import (
    AE,
    Association,
    AssociationRejectedError,
    Event,
    UserIdentityRQ,
    build_role,
    evt,
)

from ._helpers import (
    STGCMT,
    STGCMT_INSTANCE,
    VERIFICATION,
    bounded,
    ds_of,
    make_scp_ae,
    make_scu_ae,
    serving,
    session,
)


async def _rejected(ae: AE, port: int, **kwargs: Any) -> AssociationRejectedError:
    with pytest.raises(AssociationRejectedError) as info:
        await bounded(ae.associate("127.0.0.1", port, **kwargs))
    return info.value


async def test_reject_called_ae_title() -> None:
    scp = make_scp_ae("RIGHT_SCP")
    scp.require_called_aet = True
    async with serving(ae=scp) as server:
        err = await _rejected(make_scu_ae(), server.port, ae_title="WRONG_SCP")
        assert (err.result, err.source, err.reason) == (1, 1, 7)
        # the right title is accepted
        async with make_scu_ae().associate("127.0.0.1", server.port, ae_title="RIGHT_SCP") as a:
            assert a.is_established


async def test_reject_calling_ae_title() -> None:
    scp = make_scp_ae()
    scp.require_calling_aet = ["ALLOWED"]
    async with serving(ae=scp) as server:
        err = await _rejected(make_scu_ae("STRANGER"), server.port)
        assert (err.result, err.source, err.reason) == (1, 1, 3)
        async with make_scu_ae("ALLOWED").associate("127.0.0.1", server.port) as assoc:
            assert assoc.is_established


@pytest.mark.parametrize("is_async", [False, True])
async def test_reject_by_access_hook(is_async: bool) -> None:
    seen: list[tuple[str, str]] = []

    def verdict(assoc: Association) -> tuple[int, int, int] | None:
        seen.append((assoc.requestor.ae_title, assoc.requestor.address))
        return None if assoc.requestor.ae_title == "FRIEND" else (2, 1, 1)

    async def averdict(assoc: Association) -> tuple[int, int, int] | None:
        await asyncio.sleep(0)
        return verdict(assoc)

    scp = make_scp_ae()
    scp.access_hook = averdict if is_async else verdict
    async with serving(ae=scp) as server:
        err = await _rejected(make_scu_ae("FOE"), server.port)
        assert (err.result, err.source, err.reason) == (2, 1, 1)
        async with make_scu_ae("FRIEND").associate("127.0.0.1", server.port) as assoc:
            assert assoc.is_established
    assert seen == [("FOE", "127.0.0.1"), ("FRIEND", "127.0.0.1")]


@pytest.mark.parametrize("answer", ["raise", "raise-async", "not-a-triple", "words"])
async def test_a_failing_access_hook_rejects_at_once(answer: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """An access hook that raises or answers nonsense is user code gone wrong: the
    request is rejected (permanent, service user, no reason given) at once, with a
    WARNING naming the hook's error, and the server goes on."""
    def hook(assoc: Association) -> Any:
        if answer == "raise":
            raise RuntimeError("directory service down")
        return (1, 2) if answer == "not-a-triple" else ("a", "b", "c")

    async def ahook(assoc: Association) -> Any:
        await asyncio.sleep(0)
        raise RuntimeError("directory service timed out")  # (identical warnings fold)

    scp = make_scp_ae()
    scp.access_hook = ahook if answer == "raise-async" else hook
    async with serving(ae=scp) as server:
        started = asyncio.get_running_loop().time()
        err = await _rejected(make_scu_ae(), server.port)
        assert (err.result, err.source, err.reason) == (1, 1, 1)
        assert asyncio.get_running_loop().time() - started < 2.0  # not by a timeout
        scp.access_hook = None
        async with make_scu_ae().associate("127.0.0.1", server.port) as assoc:
            assert assoc.is_established
    assert any("access hook" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)


async def test_reject_over_maximum_associations() -> None:
    scp = make_scp_ae()
    scp.maximum_associations = 1
    async with serving(ae=scp) as server:
        scu = make_scu_ae()
        async with scu.associate("127.0.0.1", server.port) as first:
            err = await _rejected(scu, server.port)
            assert (err.result, err.source, err.reason) == (2, 3, 2)
            assert first.is_established
            status = await bounded(first.send_c_echo())
            assert status.Status == 0
        await bounded(first.wait_closed())
        # the slot is free again once the first association has ended
        for _ in range(50):
            if server.connection_count == 0:
                break
            await asyncio.sleep(0.02)
        async with scu.associate("127.0.0.1", server.port) as again:
            assert again.is_established


async def test_rejected_contexts_are_reported() -> None:
    scp = make_scp_ae(classes=[VERIFICATION])
    scu = make_scu_ae(classes=[VERIFICATION, STGCMT])
    async with session(scu=scu, scp=scp) as assoc:
        assert [c.abstract_syntax for c in assoc.accepted_contexts] == [VERIFICATION]
        assert [(cid, uid) for cid, uid, _ in assoc.rejected_contexts] == [(3, STGCMT)]
        assert assoc.rejected_contexts[0][2] == 3  # abstract syntax not supported
        with pytest.raises(ValueError, match="no accepted presentation context"):
            await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))


# -- user identity ----------------------------------------------------------------------


async def test_user_identity_accepted_with_positive_response() -> None:
    seen: list[tuple[int, bytes, bytes | None]] = []

    async def on_user(event: Event) -> tuple[bool, bytes]:
        seen.append((event.user_id_type, event.primary_field, event.secondary_field))
        return True, b"server-token"

    identity = UserIdentityRQ(
        identity_type=5, positive_response_requested=True, primary_field=b"jwt.token.here"
    )
    async with session([(evt.EVT_USER_ID, on_user)], ext_neg=[identity]) as assoc:
        assert assoc.is_established
        assert assoc.acceptor.user_identity is not None
        assert assoc.acceptor.user_identity.server_response == b"server-token"
    assert seen == [(5, b"jwt.token.here", None)]


async def test_user_identity_username_passcode_without_positive_response() -> None:
    seen: list[tuple[bytes, bytes | None]] = []

    def on_user(event: Event) -> tuple[bool, None]:  # sync handler, as in pynetdicom
        seen.append((event.primary_field, event.secondary_field))
        return True, None

    identity = UserIdentityRQ(
        identity_type=2,
        positive_response_requested=False,
        primary_field=b"alice",
        secondary_field=b"secret",
    )
    async with session([(evt.EVT_USER_ID, on_user)], ext_neg=[identity]) as assoc:
        assert assoc.is_established
        assert assoc.acceptor.user_identity is None
    assert seen == [(b"alice", b"secret")]


@pytest.mark.parametrize("answer", ["false", "raises"])
async def test_user_identity_rejected(answer: str) -> None:
    async def on_user(event: Event) -> tuple[bool, None]:
        if answer == "raises":
            raise RuntimeError("identity backend down")
        return event.primary_field == b"bob", None

    identity = UserIdentityRQ(
        identity_type=1, positive_response_requested=False, primary_field=b"mallory"
    )
    async with serving([(evt.EVT_USER_ID, on_user)]) as server:
        err = await _rejected(make_scu_ae(), server.port, ext_neg=[identity])
        assert (err.result, err.source, err.reason) == (1, 2, 1)
        # the server goes on serving
        async with make_scu_ae().associate("127.0.0.1", server.port) as assoc:
            assert (await bounded(assoc.send_c_echo())).Status == 0


# -- role selection ---------------------------------------------------------------------


async def test_role_selection_accepted() -> None:
    scp = make_scp_ae(classes=[VERIFICATION])
    scp.add_supported_context(STGCMT, scu_role=True, scp_role=True)
    scu = make_scu_ae(classes=[STGCMT])
    role = build_role(STGCMT, scu_role=True, scp_role=True)
    async with session(scu=scu, scp=scp, ext_neg=[role]) as assoc:
        (ctx,) = assoc.accepted_contexts
        assert ctx.abstract_syntax == STGCMT
        assert ctx.as_scu
        assert ctx.as_scp


async def test_role_selection_scp_role_refused_by_default() -> None:
    scp = make_scp_ae(classes=[VERIFICATION, STGCMT])  # default answer: SCU yes, SCP no
    scu = make_scu_ae(classes=[STGCMT])
    role = build_role(STGCMT, scu_role=True, scp_role=True)
    async with session(scu=scu, scp=scp, ext_neg=[role]) as assoc:
        (ctx,) = assoc.accepted_contexts
        assert ctx.as_scu
        assert not ctx.as_scp


async def test_role_selection_scp_only_rejected_context_when_not_allowed() -> None:
    scp = make_scp_ae(classes=[VERIFICATION, STGCMT])
    scu = make_scu_ae(classes=[VERIFICATION, STGCMT])
    role = build_role(STGCMT, scu_role=False, scp_role=True)
    async with session(scu=scu, scp=scp, ext_neg=[role]) as assoc:
        assert [c.abstract_syntax for c in assoc.accepted_contexts] == [VERIFICATION]
        assert [(cid, uid, r) for cid, uid, r in assoc.rejected_contexts] == [(3, STGCMT, 1)]


async def test_storage_commitment_report_on_new_association() -> None:
    """The SCP answers N-ACTION, then connects back with the SCP role to report."""
    transaction = generate_uid()
    reported = asyncio.get_running_loop().create_future()
    background: list[asyncio.Task[Any]] = []
    report_assocs: list[Association] = []

    # The original SCU: also an AE server accepting the report association.
    scu = make_scu_ae("MODALITY", classes=[STGCMT])
    scu.add_supported_context(STGCMT, scp_role=True)

    async def on_report(event: Event) -> tuple[int, None]:
        report_assocs.append(event.assoc)
        info = event.event_information
        reported.set_result((event.event_type, info.TransactionUID, event.context))
        return 0x0000, None

    scu_server = await bounded(
        scu.start_server(("127.0.0.1", 0), evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    )

    scp = make_scp_ae("ARCHIVE", classes=[STGCMT])

    async def send_report(uid: str, address: str) -> tuple[Dataset, Dataset | None]:
        reporter = AE("ARCHIVE")
        reporter.add_requested_context(STGCMT)
        role = build_role(STGCMT, scu_role=False, scp_role=True)
        async with reporter.associate(
            address, scu_server.port, ae_title="MODALITY", ext_neg=[role]
        ) as back:
            (ctx,) = back.accepted_contexts
            assert ctx.as_scp
            assert not ctx.as_scu
            return await back.send_n_event_report(
                ds_of(TransactionUID=uid), 1, STGCMT, STGCMT_INSTANCE
            )

    async def on_action(event: Event) -> tuple[int, None]:
        uid = event.action_information.TransactionUID
        background.append(asyncio.ensure_future(send_report(uid, event.assoc.requestor.address)))
        return 0x0000, None

    try:
        async with session([(evt.EVT_N_ACTION, on_action)], scu=scu, scp=scp) as assoc:
            status, _ = await bounded(
                assoc.send_n_action(ds_of(TransactionUID=transaction), 1, STGCMT,
                                    STGCMT_INSTANCE)
            )
            assert status.Status == 0
        # the SCU released at once; the report comes on a new association
        event_type, uid, context = await bounded(reported)
        (report_status, _), = await bounded(asyncio.gather(*background))
    finally:
        await bounded(scu_server.shutdown(grace=0))
    assert event_type == 1
    assert uid == transaction
    assert report_status.Status == 0
    assert context.abstract_syntax == STGCMT
    (back_assoc,) = report_assocs
    assert back_assoc.is_acceptor
    assert back_assoc.requestor.ae_title == "ARCHIVE"
    assert back_assoc is not assoc


# -- notification events ----------------------------------------------------------------


async def test_notification_events_released() -> None:
    server_events: list[str] = []
    client_events: list[str] = []

    def note(into: list[str]) -> Any:
        async def handler(event: Event) -> None:
            into.append(event.name)

        return handler

    names = (evt.EVT_ESTABLISHED, evt.EVT_RELEASED, evt.EVT_ABORTED, evt.EVT_REJECTED)
    async with serving([(e, note(server_events)) for e in names]) as server:
        assoc = await bounded(
            make_scu_ae().associate(
                "127.0.0.1", server.port, evt_handlers=[(e, note(client_events)) for e in names]
            )
        )
        await bounded(assoc.release())
        for _ in range(50):
            if "EVT_RELEASED" in server_events:
                break
            await asyncio.sleep(0.02)
    assert client_events == ["EVT_ESTABLISHED", "EVT_RELEASED"]
    assert server_events == ["EVT_ESTABLISHED", "EVT_RELEASED"]


async def test_notification_events_aborted_and_rejected() -> None:
    server_events: list[str] = []
    client_events: list[str] = []
    server_done = asyncio.Event()

    async def on_server(event: Event) -> None:
        server_events.append(event.name)
        if event.name in ("EVT_ABORTED", "EVT_REJECTED"):
            server_done.set()

    async def on_client(event: Event) -> None:
        client_events.append(event.name)

    names = (evt.EVT_ESTABLISHED, evt.EVT_RELEASED, evt.EVT_ABORTED, evt.EVT_REJECTED)
    scp = make_scp_ae()
    scp.require_calling_aet = ["GOOD"]
    async with serving([(e, on_server) for e in names], ae=scp) as server:
        handlers = [(e, on_client) for e in names]
        assoc = await bounded(
            make_scu_ae("GOOD").associate("127.0.0.1", server.port, evt_handlers=handlers)
        )
        assoc.abort()
        await bounded(assoc.wait_closed())
        await bounded(server_done.wait())
        assert assoc.is_aborted
        assert server_events == ["EVT_ESTABLISHED", "EVT_ABORTED"]

        server_done.clear()
        with pytest.raises(AssociationRejectedError):
            await bounded(
                make_scu_ae("BAD").associate("127.0.0.1", server.port, evt_handlers=handlers)
            )
        await bounded(server_done.wait())
        await asyncio.sleep(0.05)
    assert server_events == ["EVT_ESTABLISHED", "EVT_ABORTED", "EVT_REJECTED"]
    assert client_events == ["EVT_ESTABLISHED", "EVT_ABORTED", "EVT_REJECTED"]


async def test_handlers_bound_per_association_override_nothing_on_server() -> None:
    """evt_handlers on associate() serve requests arriving at the requestor only."""
    calls: list[str] = []

    async def client_echo(event: Event) -> int:
        calls.append("client")
        return 0

    async with session(evt_handlers=[(evt.EVT_C_ECHO, client_echo)]) as assoc:
        assert (await bounded(assoc.send_c_echo())).Status == 0
    assert calls == []


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_both_ends_have_tcp_nodelay(loop_kind: str) -> None:
    """Small PDUs must not wait for Nagle's algorithm, on either loop (set by the loop
    itself for asyncio and uvloop, by the adapter for any other)."""
    import socket

    import uvloop

    from ._helpers import make_scu_ae, serving

    async def check() -> tuple[int, int]:
        async with (
            serving() as server,
            make_scu_ae().associate("127.0.0.1", server.port) as assoc,
        ):
            (peer,) = server._associations
            assert assoc.proto is not None and assoc.proto.transport is not None
            assert peer.proto is not None and peer.proto.transport is not None
            ours = assoc.proto.transport.get_extra_info("socket")
            theirs = peer.proto.transport.get_extra_info("socket")
            return (ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                    theirs.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    factory = uvloop.new_event_loop if loop_kind == "uvloop" else asyncio.new_event_loop
    loop = factory()  # not asyncio.Runner: Python 3.10 has none
    try:
        client, server = loop.run_until_complete(check())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert client and server


async def test_statuses_follow_the_handler_when_results_repeat() -> None:
    """Reused responses (remembered results, the response memo) never go stale."""
    success, failed = (0x0000, None), (0x0110, None)
    mutable: list[Any] = [0x0000, None]
    results: list[object] = [success, failed, success, success, failed, mutable, mutable,
                             success]

    async def on_action(event: Event) -> object:
        result = results[event.request.MessageID - 1]
        if result is mutable and event.request.MessageID == 7:
            mutable[0] = 0xC123  # the same list object as last time, now another status
        return result

    async with session([(evt.EVT_N_ACTION, on_action)]) as assoc:
        got = []
        for _ in results:
            status, _ = await bounded(
                assoc.send_n_action(ds_of(TransactionUID="1.2.3"), 1, STGCMT, STGCMT_INSTANCE)
            )
            got.append(status.Status)
    assert got == [0x0000, 0x0110, 0x0000, 0x0000, 0x0110, 0x0000, 0xC123, 0x0000]

"""Association negotiation rules (PS3.8 9.3.2-9.3.4, PS3.7 D.3.3)."""

from __future__ import annotations

import pytest

from aiodimse.errors import RemoteProtocolError
from aiodimse.ul import (
    OperationsLimits,
    RejectCause,
    SupportedContext,
    answer_extended_negotiation,
    async_ops_limits_as_requestor,
    check_application_context,
    extended_negotiation_answers,
    make_reject,
    negotiate_as_acceptor,
    negotiate_as_requestor,
    negotiate_async_ops_as_acceptor,
    reject_for,
)
from aiodimse.wire.items import (
    AsyncOpsWindow,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassExtendedNegotiation,
    UserInformation,
)
from aiodimse.wire.pdus import AAssociateAC, AAssociateRJ

from .helpers import EXPLICIT_LE, IMPLICIT_LE, VERIFICATION, make_rq

CT = "1.2.840.10008.5.1.4.1.1.2"
COMMIT = "1.2.840.10008.1.20.1"
BIG_ENDIAN = "1.2.840.10008.1.2.2"


def rq_ctx(cid: int, abstract: str, *syntaxes: str) -> PresentationContextRQ:
    return PresentationContextRQ(
        context_id=cid, abstract_syntax=abstract, transfer_syntaxes=syntaxes or (IMPLICIT_LE,)
    )


def role(uid: str, scu: bool, scp: bool) -> RoleSelection:
    return RoleSelection(sop_class_uid=uid, scu_role=scu, scp_role=scp)


# -- acceptor: presentation contexts ------------------------------------------------------


def test_acceptor_picks_its_own_preferred_transfer_syntax() -> None:
    supported = [SupportedContext(abstract_syntax=CT, transfer_syntaxes=(EXPLICIT_LE, IMPLICIT_LE))]
    result = negotiate_as_acceptor([rq_ctx(1, CT, IMPLICIT_LE, EXPLICIT_LE)], [], supported)
    assert result.contexts == (
        PresentationContextAC(context_id=1, result=0, transfer_syntax=EXPLICIT_LE),
    )
    (ctx,) = result.accepted.values()
    assert (ctx.context_id, ctx.abstract_syntax, ctx.transfer_syntax) == (1, CT, EXPLICIT_LE)
    assert result.roles == ()


def test_acceptor_rejections_in_proposal_order() -> None:
    supported = [
        SupportedContext(abstract_syntax=CT, transfer_syntaxes=(IMPLICIT_LE,)),
        SupportedContext(abstract_syntax=VERIFICATION, transfer_syntaxes=(IMPLICIT_LE,)),
    ]
    proposed = [
        rq_ctx(5, "1.2.3.4"),  # unknown abstract syntax
        rq_ctx(3, CT, BIG_ENDIAN),  # no common transfer syntax
        rq_ctx(1, VERIFICATION),
    ]
    result = negotiate_as_acceptor(proposed, [], supported)
    assert [(c.context_id, c.result) for c in result.contexts] == [(5, 3), (3, 4), (1, 0)]
    # A rejected context echoes a transfer syntax (not significant, never empty).
    assert result.contexts[1].transfer_syntax == BIG_ENDIAN
    assert list(result.accepted) == [1]


def test_acceptor_supports_nothing() -> None:
    result = negotiate_as_acceptor([rq_ctx(1, CT)], [], [])
    assert [c.result for c in result.contexts] == [3]
    assert dict(result.accepted) == {}


def test_acceptor_same_abstract_syntax_in_several_contexts() -> None:
    supported = [SupportedContext(abstract_syntax=CT, transfer_syntaxes=(IMPLICIT_LE, EXPLICIT_LE))]
    result = negotiate_as_acceptor(
        [rq_ctx(1, CT, EXPLICIT_LE), rq_ctx(3, CT, IMPLICIT_LE)], [], supported
    )
    assert {cid: c.transfer_syntax for cid, c in result.accepted.items()} == {
        1: EXPLICIT_LE,
        3: IMPLICIT_LE,
    }


def test_supported_twice_is_an_error() -> None:
    s = SupportedContext(abstract_syntax=CT, transfer_syntaxes=(IMPLICIT_LE,))
    with pytest.raises(ValueError, match="twice"):
        negotiate_as_acceptor([], [], [s, s])
    with pytest.raises(ValueError):
        SupportedContext(abstract_syntax=CT, transfer_syntaxes=())


# -- acceptor: roles -------------------------------------------------------------------


def test_no_role_item_means_default_roles_and_no_answer() -> None:
    supported = [
        SupportedContext(
            abstract_syntax=COMMIT, transfer_syntaxes=(IMPLICIT_LE,), scu_role=False, scp_role=True
        )
    ]
    result = negotiate_as_acceptor([rq_ctx(1, COMMIT)], [], supported)
    (ctx,) = result.accepted.values()
    assert (ctx.local_scu, ctx.local_scp) == (False, True)  # acceptor is SCP
    assert (ctx.peer_scu, ctx.peer_scp) == (True, False)  # requestor is SCU
    assert result.roles == ()


def test_default_role_false_refuses_a_proposal_without_role_item() -> None:
    supported = [
        SupportedContext(abstract_syntax=CT, transfer_syntaxes=(IMPLICIT_LE,),
                         scu_role=False, scp_role=True, default_role=False)
    ]
    plain = negotiate_as_acceptor([rq_ctx(1, CT)], [], supported)
    assert plain.accepted == {}
    assert [c.result for c in plain.contexts] == [1]  # user rejection
    # the same class with the requestor as its SCP (C-GET's storage contexts) is accepted
    as_scp = negotiate_as_acceptor([rq_ctx(1, CT)], [role(CT, False, True)], supported)
    (ctx,) = as_scp.accepted.values()
    assert (ctx.local_scu, ctx.local_scp) == (True, False)


@pytest.mark.parametrize(
    ("proposed", "allowed", "answer", "result"),
    [
        ((True, True), (True, True), (True, True), 0),
        ((True, True), (True, False), (True, False), 0),
        ((True, True), (False, True), (False, True), 0),
        ((False, True), (True, True), (False, True), 0),  # only roles proposed are accepted
        ((True, False), (True, True), (True, False), 0),
        ((True, False), (False, True), None, 1),  # the only role proposed is not allowed
        ((False, True), (True, False), None, 1),
        ((False, False), (True, True), None, 1),
    ],
)
def test_role_selection(
    proposed: tuple[bool, bool],
    allowed: tuple[bool, bool],
    answer: tuple[bool, bool] | None,
    result: int,
) -> None:
    supported = [
        SupportedContext(
            abstract_syntax=COMMIT,
            transfer_syntaxes=(IMPLICIT_LE,),
            scu_role=allowed[0],
            scp_role=allowed[1],
        )
    ]
    out = negotiate_as_acceptor([rq_ctx(1, COMMIT)], [role(COMMIT, *proposed)], supported)
    assert out.contexts[0].result == result
    if answer is None:
        assert out.roles == ()
        assert dict(out.accepted) == {}
        return
    assert out.roles == (role(COMMIT, *answer),)
    ctx = out.accepted[1]
    assert (ctx.peer_scu, ctx.peer_scp) == answer
    assert (ctx.local_scp, ctx.local_scu) == answer


def test_role_item_for_other_sop_class_does_not_apply() -> None:
    supported = [SupportedContext(abstract_syntax=CT, transfer_syntaxes=(IMPLICIT_LE,))]
    out = negotiate_as_acceptor([rq_ctx(1, CT)], [role(COMMIT, False, True)], supported)
    assert out.contexts[0].result == 0
    assert out.roles == ()


def test_one_role_answer_per_sop_class() -> None:
    supported = [
        SupportedContext(
            abstract_syntax=COMMIT, transfer_syntaxes=(IMPLICIT_LE,), scu_role=True, scp_role=True
        )
    ]
    out = negotiate_as_acceptor(
        [rq_ctx(1, COMMIT), rq_ctx(3, COMMIT)],
        [role(COMMIT, True, True), role(COMMIT, False, False)],  # the repeat is ignored
        supported,
    )
    assert out.roles == (role(COMMIT, True, True),)
    assert len(out.accepted) == 2


# -- requestor -------------------------------------------------------------------------


def make_ac(
    *contexts: PresentationContextAC, roles: tuple[RoleSelection, ...] = ()
) -> AAssociateAC:
    return AAssociateAC(
        called_ae_title="A",
        calling_ae_title="B",
        presentation_contexts=contexts,
        user_information=UserInformation(role_selection=roles),
    )


def ac_ctx(cid: int, result: int = 0, ts: str = IMPLICIT_LE) -> PresentationContextAC:
    return PresentationContextAC(context_id=cid, result=result, transfer_syntax=ts)


def test_requestor_accepted_and_rejected() -> None:
    proposed = [rq_ctx(1, CT, EXPLICIT_LE, IMPLICIT_LE), rq_ctx(3, VERIFICATION), rq_ctx(5, COMMIT)]
    ac = make_ac(ac_ctx(1, ts=EXPLICIT_LE), ac_ctx(3, result=3), ac_ctx(9))  # 9: not ours
    out = negotiate_as_requestor(proposed, [], ac)
    ctx = out.accepted[1]
    assert (ctx.abstract_syntax, ctx.transfer_syntax) == (CT, EXPLICIT_LE)
    assert (ctx.local_scu, ctx.local_scp) == (True, False)  # defaults
    assert {cid: r.result for cid, r in out.rejected.items()} == {3: 3, 5: 2}  # 5: no answer
    assert out.rejected[3].abstract_syntax == VERIFICATION
    assert 9 not in out.accepted


def test_requestor_transfer_syntax_not_proposed_is_a_protocol_error() -> None:
    ac = make_ac(ac_ctx(1, ts=BIG_ENDIAN))
    with pytest.raises(RemoteProtocolError) as info:
        negotiate_as_requestor([rq_ctx(1, CT, IMPLICIT_LE)], [], ac)
    assert (info.value.abort_source, info.value.abort_reason) == (2, 6)


def test_rejected_context_transfer_syntax_is_not_tested() -> None:
    out = negotiate_as_requestor([rq_ctx(1, CT)], [], make_ac(ac_ctx(1, result=4, ts="")))
    assert out.rejected[1].result == 4


@pytest.mark.parametrize(
    ("ours", "theirs", "local"),
    [
        ((True, True), (True, True), (True, True)),
        ((True, True), (False, True), (False, True)),
        ((False, True), (True, True), (False, True)),  # answer for a role not proposed: ignored
        ((True, False), None, (True, False)),  # no answer: defaults
        ((False, True), None, (True, False)),
        ((True, True), (False, False), (False, False)),
    ],
)
def test_requestor_roles(
    ours: tuple[bool, bool], theirs: tuple[bool, bool] | None, local: tuple[bool, bool]
) -> None:
    answer = () if theirs is None else (role(COMMIT, *theirs),)
    out = negotiate_as_requestor(
        [rq_ctx(1, COMMIT)], [role(COMMIT, *ours)], make_ac(ac_ctx(1), roles=answer)
    )
    ctx = out.accepted[1]
    assert (ctx.local_scu, ctx.local_scp) == local


def test_requestor_ignores_role_answer_not_proposed() -> None:
    out = negotiate_as_requestor(
        [rq_ctx(1, COMMIT)], [], make_ac(ac_ctx(1), roles=(role(COMMIT, False, True),))
    )
    assert (out.accepted[1].local_scu, out.accepted[1].local_scp) == (True, False)


def test_round_trip_acceptor_answer_read_by_requestor() -> None:
    supported = [
        SupportedContext(
            abstract_syntax=COMMIT, transfer_syntaxes=(IMPLICIT_LE,), scu_role=True, scp_role=True
        ),
        SupportedContext(abstract_syntax=CT, transfer_syntaxes=(EXPLICIT_LE,)),
    ]
    proposed = [rq_ctx(1, COMMIT), rq_ctx(3, CT, IMPLICIT_LE), rq_ctx(5, CT, EXPLICIT_LE)]
    roles = [role(COMMIT, False, True)]
    acc = negotiate_as_acceptor(proposed, roles, supported)
    ac = make_ac(*acc.contexts, roles=acc.roles)
    req = negotiate_as_requestor(proposed, roles, ac)
    assert set(req.accepted) == set(acc.accepted) == {1, 5}
    for cid, mine in req.accepted.items():
        theirs = acc.accepted[cid]
        assert mine.transfer_syntax == theirs.transfer_syntax
        assert (mine.local_scu, mine.local_scp) == (theirs.peer_scu, theirs.peer_scp)
    assert (req.accepted[1].local_scu, req.accepted[1].local_scp) == (False, True)


# -- asynchronous operations window ------------------------------------------------------


def window(invoked: int, performed: int) -> AsyncOpsWindow:
    return AsyncOpsWindow(max_invoked=invoked, max_performed=performed)


def test_window_not_proposed_is_omitted_and_synchronous() -> None:
    answer, limits = negotiate_async_ops_as_acceptor(None, window(10, 10))
    assert answer is None
    assert limits == OperationsLimits(local_max_invoked=1, peer_max_invoked=1)


@pytest.mark.parametrize(
    ("proposed", "ours", "answer"),
    [
        ((5, 3), (10, 10), (5, 3)),  # never above the proposal
        ((5, 3), (2, 4), (4, 2)),  # requestor invokes <= what we perform, and vice versa
        ((0, 0), (7, 8), (8, 7)),  # 0 proposed: any of our values
        ((0, 0), (0, 0), (0, 0)),  # both unlimited
        ((5, 3), (0, 0), (5, 3)),  # our 0 against theirs: theirs
        ((5, 3), None, (1, 1)),  # we are synchronous
    ],
)
def test_window_acceptor(
    proposed: tuple[int, int], ours: tuple[int, int] | None, answer: tuple[int, int]
) -> None:
    got, limits = negotiate_async_ops_as_acceptor(
        window(*proposed), window(*ours) if ours else None
    )
    assert got == window(*answer)
    # The answer's "invoked" is the requestor's direction, i.e. the peer's toward us.
    assert limits == OperationsLimits(local_max_invoked=answer[1], peer_max_invoked=answer[0])


@pytest.mark.parametrize(
    ("proposed", "answer", "limits"),
    [
        (None, None, (1, 1)),
        (None, (5, 5), (1, 1)),  # an answer to nothing is ignored
        ((5, 5), None, (1, 1)),  # no answer: defaults
        ((5, 3), (4, 2), (4, 2)),
        ((5, 3), (9, 9), (5, 3)),  # above the proposal: clamped
        ((0, 0), (0, 6), (0, 6)),
        ((5, 3), (0, 0), (5, 3)),
    ],
)
def test_window_requestor(
    proposed: tuple[int, int] | None, answer: tuple[int, int] | None, limits: tuple[int, int]
) -> None:
    got = async_ops_limits_as_requestor(
        window(*proposed) if proposed else None, window(*answer) if answer else None
    )
    assert got == OperationsLimits(local_max_invoked=limits[0], peer_max_invoked=limits[1])


def test_window_both_sides_agree() -> None:
    proposed = window(8, 2)
    answer, acceptor_limits = negotiate_async_ops_as_acceptor(proposed, window(3, 6))
    requestor_limits = async_ops_limits_as_requestor(proposed, answer)
    assert requestor_limits.local_max_invoked == acceptor_limits.peer_max_invoked == 6
    assert requestor_limits.peer_max_invoked == acceptor_limits.local_max_invoked == 2


# -- SOP class extended negotiation --------------------------------------------------------


def ext(uid: str, info: bytes) -> SOPClassExtendedNegotiation:
    return SOPClassExtendedNegotiation(sop_class_uid=uid, application_information=info)


def test_extended_negotiation_default_does_not_answer() -> None:
    assert answer_extended_negotiation([ext(CT, b"\x01")]) == ()


def test_extended_negotiation_hook_answers_only_proposed() -> None:
    seen: list[str] = []

    def hook(item: SOPClassExtendedNegotiation) -> bytes | None:
        seen.append(item.sop_class_uid)
        return b"\x01\x00" if item.sop_class_uid == CT else None

    proposed = [ext(CT, b"\x01\x01"), ext(VERIFICATION, b"\x01"), ext(CT, b"\x00")]
    assert answer_extended_negotiation(proposed, hook) == (ext(CT, b"\x01\x00"),)
    assert seen == [CT, VERIFICATION]  # a repeated SOP class is not asked again


def test_extended_negotiation_requestor_reads_answers_for_proposed() -> None:
    got = extended_negotiation_answers(
        [ext(CT, b"\x01")], [ext(CT, b"\x00"), ext(VERIFICATION, b"\x01")]
    )
    assert dict(got) == {CT: b"\x00"}


# -- A-ASSOCIATE-RJ ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "source", "reason"),
    [
        (RejectCause.NO_REASON_GIVEN, 1, 1),
        (RejectCause.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED, 1, 2),
        (RejectCause.CALLING_AE_TITLE_NOT_RECOGNIZED, 1, 3),
        (RejectCause.CALLED_AE_TITLE_NOT_RECOGNIZED, 1, 7),
        (RejectCause.ACSE_NO_REASON_GIVEN, 2, 1),
        (RejectCause.PROTOCOL_VERSION_NOT_SUPPORTED, 2, 2),
        (RejectCause.TEMPORARY_CONGESTION, 3, 1),
        (RejectCause.LOCAL_LIMIT_EXCEEDED, 3, 2),
    ],
)
def test_reject_for_each_cause(cause: RejectCause, source: int, reason: int) -> None:
    assert reject_for(cause) == AAssociateRJ(result=1, source=source, reason=reason)
    assert reject_for(cause, transient=True) == AAssociateRJ(result=2, source=source, reason=reason)


@pytest.mark.parametrize(
    ("result", "source", "reason"),
    [(0, 1, 1), (3, 1, 1), (1, 0, 1), (1, 4, 1), (1, 1, 4), (1, 1, 0), (1, 2, 3), (1, 3, 0)],
)
def test_make_reject_refuses_codes_outside_table_9_21(
    result: int, source: int, reason: int
) -> None:
    with pytest.raises(ValueError):
        make_reject(result, source, reason)


def test_application_context_helper() -> None:
    assert check_application_context(make_rq()) is None
    from dataclasses import replace

    other = replace(make_rq(), application_context_name="1.2.3")
    assert check_application_context(other) == AAssociateRJ(result=1, source=1, reason=2)

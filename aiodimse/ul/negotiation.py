"""Association negotiation as pure functions (PS3.8 9.3.2-9.3.3, PS3.7 Annex D).

Acceptor side: ``negotiate_as_acceptor`` answers the proposed presentation contexts and
SCP/SCU role selection items; ``negotiate_async_ops_as_acceptor`` answers the
asynchronous operations window; ``answer_extended_negotiation`` the SOP class extended
negotiation items. Requestor side: ``negotiate_as_requestor`` and
``async_ops_limits_as_requestor`` read the A-ASSOCIATE-AC against what was proposed.
``make_reject`` / ``reject_for`` build A-ASSOCIATE-RJ PDUs from Table 9-21.

Rules, as decided here:

* Transfer syntax: the acceptor picks the first of *its own* transfer syntaxes, in its
  order of preference, that the requestor proposed for the context (so the acceptor's
  preference wins, as in DCMTK and pynetdicom).
* Roles (PS3.7 D.3.3.4): without a role selection item the requestor is SCU and the
  acceptor SCP, and the answer has no item either. With an item, the acceptor accepts a
  role only if it was proposed and the acceptor allows it; if that leaves the requestor
  no role at all, the context is rejected with result 1 (user rejection).
* An A-ASSOCIATE-AC that accepts a context with a transfer syntax the requestor did not
  propose is a protocol error (``RemoteProtocolError``, invalid PDU parameter value):
  the acceptor believes the context is usable in an encoding we cannot agree to, and
  silently dropping the context would leave the two sides disagreeing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from aiodimse.errors import RemoteProtocolError
from aiodimse.wire.codes import (
    APPLICATION_CONTEXT_NAME,
    AbortReason,
    AbortSource,
    ContextResult,
    RejectResult,
    RejectSource,
)
from aiodimse.wire.items import (
    AsyncOpsWindow,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassExtendedNegotiation,
)
from aiodimse.wire.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ

__all__ = [
    "SupportedContext",
    "NegotiatedContext",
    "RejectedContext",
    "AcceptorNegotiation",
    "RequestorNegotiation",
    "OperationsLimits",
    "negotiate_as_acceptor",
    "negotiate_as_requestor",
    "negotiate_async_ops_as_acceptor",
    "async_ops_limits_as_requestor",
    "answer_extended_negotiation",
    "extended_negotiation_answers",
    "RejectCause",
    "make_reject",
    "reject_for",
    "check_application_context",
]


# -- presentation contexts and roles -------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SupportedContext:
    """An abstract syntax the acceptor supports.

    ``transfer_syntaxes`` are in our order of preference. ``scu_role`` / ``scp_role``
    say whether the *requestor* may take the SCU / SCP role for this abstract syntax
    when it proposes it in a role selection item (pynetdicom's
    ``add_supported_context(scu_role=, scp_role=)``); we take the opposite role.
    ``default_role`` False refuses a proposal without a role selection item (which
    would make us its SCP): for a class we only invoke, such as the storage classes
    of a C-GET SCP that does not store.
    """

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]
    scu_role: bool = True
    scp_role: bool = False
    default_role: bool = True

    def __post_init__(self) -> None:
        if not self.transfer_syntaxes:
            raise ValueError(f"no transfer syntax for {self.abstract_syntax}")


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiatedContext:
    """An accepted presentation context and the roles each side may take on it."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    local_scu: bool
    local_scp: bool

    @property
    def peer_scu(self) -> bool:
        """The peer may invoke operations (it is SCU) exactly when we perform them."""
        return self.local_scp

    @property
    def peer_scp(self) -> bool:
        """The peer may perform operations exactly when we may invoke them."""
        return self.local_scu


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedContext:
    """A presentation context that was not accepted; ``result`` is a ``ContextResult``."""

    context_id: int
    abstract_syntax: str
    result: int


def _frozen_map(items: Iterable[tuple[int, NegotiatedContext]]) -> Mapping[int, NegotiatedContext]:
    return MappingProxyType(dict(items))


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptorNegotiation:
    """What the acceptor puts in its A-ASSOCIATE-AC, and what it means for itself.

    ``contexts`` answer every proposed context, in proposal order; ``roles`` are the
    role selection answers; ``accepted`` maps context ID to the usable contexts.
    """

    contexts: tuple[PresentationContextAC, ...]
    roles: tuple[RoleSelection, ...]
    accepted: Mapping[int, NegotiatedContext]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestorNegotiation:
    """What the A-ASSOCIATE-AC means for the requestor."""

    accepted: Mapping[int, NegotiatedContext]
    rejected: Mapping[int, RejectedContext]


def _first_per_sop_class(roles: Iterable[RoleSelection]) -> dict[str, RoleSelection]:
    """One role item per SOP class (PS3.7 D.3.3.4); a repeated item is ignored."""
    by_uid: dict[str, RoleSelection] = {}
    for item in roles:
        by_uid.setdefault(item.sop_class_uid, item)
    return by_uid


# The members as globals (see states.py on reading enum members).
_ACCEPTANCE = ContextResult.ACCEPTANCE
_NO_REASON = ContextResult.NO_REASON


def negotiate_as_acceptor(
    proposed: Sequence[PresentationContextRQ],
    proposed_roles: Sequence[RoleSelection],
    supported: Iterable[SupportedContext],
) -> AcceptorNegotiation:
    """Answer the proposed presentation contexts and role selection items.

    Results: 3 (abstract syntax not supported) when we do not support the abstract
    syntax; 4 (transfer syntaxes not supported) when none of ours was proposed; 1
    (user rejection) when the role selection (or its absence, for a context whose
    ``default_role`` is False) leaves the requestor no role we allow;
    otherwise 0 with our preferred transfer syntax. A rejected context echoes the
    first proposed transfer syntax (not significant, PS3.8 9.3.3.2).
    """
    ours: dict[str, SupportedContext] = {}
    for context in supported:
        if context.abstract_syntax in ours:
            raise ValueError(f"abstract syntax supported twice: {context.abstract_syntax}")
        ours[context.abstract_syntax] = context
    role_items = _first_per_sop_class(proposed_roles)

    answers: list[PresentationContextAC] = []
    accepted: list[tuple[int, NegotiatedContext]] = []
    role_answers: dict[str, RoleSelection] = {}
    for rq in proposed:
        support = ours.get(rq.abstract_syntax)
        if support is None:
            answers.append(_rejected(rq, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED))
            continue
        syntax = next((ts for ts in support.transfer_syntaxes if ts in rq.transfer_syntaxes), None)
        if syntax is None:
            answers.append(_rejected(rq, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED))
            continue
        item = role_items.get(rq.abstract_syntax)
        if item is None:  # the default roles, no answer item
            requestor_scu, requestor_scp = support.default_role, False
        else:
            requestor_scu = item.scu_role and support.scu_role
            requestor_scp = item.scp_role and support.scp_role
        if not (requestor_scu or requestor_scp):
            answers.append(_rejected(rq, ContextResult.USER_REJECTION))
            continue
        if item is not None:
            role_answers.setdefault(
                rq.abstract_syntax,
                RoleSelection(
                    sop_class_uid=rq.abstract_syntax,
                    scu_role=requestor_scu,
                    scp_role=requestor_scp,
                ),
            )
        answers.append(
            PresentationContextAC(
                context_id=rq.context_id, result=_ACCEPTANCE, transfer_syntax=syntax
            )
        )
        accepted.append(
            (
                rq.context_id,
                NegotiatedContext(
                    context_id=rq.context_id,
                    abstract_syntax=rq.abstract_syntax,
                    transfer_syntax=syntax,
                    local_scu=requestor_scp,
                    local_scp=requestor_scu,
                ),
            )
        )
    return AcceptorNegotiation(
        contexts=tuple(answers), roles=tuple(role_answers.values()), accepted=_frozen_map(accepted)
    )


def _rejected(rq: PresentationContextRQ, result: ContextResult) -> PresentationContextAC:
    return PresentationContextAC(
        context_id=rq.context_id, result=result, transfer_syntax=rq.transfer_syntaxes[0]
    )


def negotiate_as_requestor(
    proposed: Sequence[PresentationContextRQ],
    proposed_roles: Sequence[RoleSelection],
    ac: AAssociateAC,
) -> RequestorNegotiation:
    """Read the acceptor's answers against what we proposed.

    Answers for context IDs we did not propose are ignored; a proposed context with no
    answer counts as rejected with result 2 (no reason). Role answers count only for
    roles we proposed; without a role item (or without an answer) we are SCU and the
    peer SCP. An accepted context whose roles all came back refused stays accepted with
    no role for us. Raises ``RemoteProtocolError`` when a context is accepted with a
    transfer syntax we did not propose for it.
    """
    answers: dict[int, PresentationContextAC] = {}
    for item in ac.presentation_contexts:
        answers.setdefault(item.context_id, item)
    our_roles = _first_per_sop_class(proposed_roles)
    their_roles = _first_per_sop_class(ac.user_information.role_selection)

    accepted: list[tuple[int, NegotiatedContext]] = []
    rejected: dict[int, RejectedContext] = {}
    for rq in proposed:
        answer = answers.get(rq.context_id)
        result = _NO_REASON if answer is None else answer.result
        if answer is None or result != _ACCEPTANCE:
            rejected[rq.context_id] = RejectedContext(
                context_id=rq.context_id, abstract_syntax=rq.abstract_syntax, result=result
            )
            continue
        if answer.transfer_syntax not in rq.transfer_syntaxes:
            raise RemoteProtocolError(
                f"presentation context {rq.context_id} accepted with transfer syntax "
                f"{answer.transfer_syntax!r}, which was not proposed",
                abort_source=AbortSource.SERVICE_PROVIDER,
                abort_reason=AbortReason.INVALID_PDU_PARAMETER_VALUE,
            )
        local_scu, local_scp = True, False
        ours = our_roles.get(rq.abstract_syntax)
        theirs = their_roles.get(rq.abstract_syntax)
        if ours is not None and theirs is not None:
            local_scu = ours.scu_role and theirs.scu_role
            local_scp = ours.scp_role and theirs.scp_role
        accepted.append(
            (
                rq.context_id,
                NegotiatedContext(
                    context_id=rq.context_id,
                    abstract_syntax=rq.abstract_syntax,
                    transfer_syntax=answer.transfer_syntax,
                    local_scu=local_scu,
                    local_scp=local_scp,
                ),
            )
        )
    return RequestorNegotiation(
        accepted=_frozen_map(accepted), rejected=MappingProxyType(rejected)
    )


# -- asynchronous operations window ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationsLimits:
    """Outstanding-operation limits for each direction; 0 means unlimited.

    ``local_max_invoked``: operations we may have outstanding (invoked by us, awaiting
    the peer's response). ``peer_max_invoked``: operations the peer may have
    outstanding toward us.
    """

    local_max_invoked: int = 1
    peer_max_invoked: int = 1


_SYNCHRONOUS = OperationsLimits()


def _at_most(proposal: int, ours: int) -> int:
    """Our answer to one window field: no more than proposed (0 = unlimited)."""
    if proposal == 0:
        return ours
    if ours == 0:
        return proposal
    return min(proposal, ours)


def negotiate_async_ops_as_acceptor(
    proposed: AsyncOpsWindow | None, ours: AsyncOpsWindow | None
) -> tuple[AsyncOpsWindow | None, OperationsLimits]:
    """Answer the requestor's window (PS3.7 D.3.3.3); return (answer item, our limits).

    ``ours`` is what we would like, from our own point of view: ``max_invoked`` =
    operations we want to have outstanding, ``max_performed`` = operations we can
    perform at once (None: synchronous, 1/1). The answer is omitted when nothing was
    proposed; otherwise each field is at most the proposal. In the answer, as in the
    request, "invoked" is the requestor's direction and "performed" ours.
    """
    if proposed is None:
        return None, _SYNCHRONOUS
    mine = ours if ours is not None else AsyncOpsWindow(max_invoked=1, max_performed=1)
    answer = AsyncOpsWindow(
        max_invoked=_at_most(proposed.max_invoked, mine.max_performed),
        max_performed=_at_most(proposed.max_performed, mine.max_invoked),
    )
    limits = OperationsLimits(
        local_max_invoked=answer.max_performed, peer_max_invoked=answer.max_invoked
    )
    return answer, limits


def async_ops_limits_as_requestor(
    proposed: AsyncOpsWindow | None, answer: AsyncOpsWindow | None
) -> OperationsLimits:
    """Our limits from the acceptor's window answer.

    No proposal (an answer is then ignored) or no answer: 1/1. An answer above the
    proposal is clamped to it.
    """
    if proposed is None or answer is None:
        return _SYNCHRONOUS
    return OperationsLimits(
        local_max_invoked=_at_most(proposed.max_invoked, answer.max_invoked),
        peer_max_invoked=_at_most(proposed.max_performed, answer.max_performed),
    )


# -- SOP class extended negotiation ---------------------------------------------------

ExtendedNegotiationHook = Callable[[SOPClassExtendedNegotiation], "bytes | None"]


def answer_extended_negotiation(
    proposed: Sequence[SOPClassExtendedNegotiation],
    hook: ExtendedNegotiationHook | None = None,
) -> tuple[SOPClassExtendedNegotiation, ...]:
    """The 0x56 answers: ``hook`` gets each proposed item and returns our application
    information, or None for no answer. Without a hook nothing is answered. Only the
    first item per SOP class is considered.
    """
    if hook is None:
        return ()
    answers: dict[str, SOPClassExtendedNegotiation] = {}
    for item in proposed:
        if item.sop_class_uid in answers:
            continue
        info = hook(item)
        if info is not None:
            answers[item.sop_class_uid] = SOPClassExtendedNegotiation(
                sop_class_uid=item.sop_class_uid, application_information=info
            )
    return tuple(answers.values())


def extended_negotiation_answers(
    proposed: Sequence[SOPClassExtendedNegotiation],
    answers: Sequence[SOPClassExtendedNegotiation],
) -> Mapping[str, bytes]:
    """Requestor side: SOP class UID -> the acceptor's answer, for classes we proposed."""
    wanted = {item.sop_class_uid for item in proposed}
    result: dict[str, bytes] = {}
    for item in answers:
        if item.sop_class_uid in wanted:
            result.setdefault(item.sop_class_uid, bytes(item.application_information))
    return MappingProxyType(result)


# -- A-ASSOCIATE-RJ ---------------------------------------------------------------------


class RejectCause(Enum):
    """The (source, reason) pairs of PS3.8 Table 9-21."""

    NO_REASON_GIVEN = (1, 1)
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = (1, 2)
    CALLING_AE_TITLE_NOT_RECOGNIZED = (1, 3)
    CALLED_AE_TITLE_NOT_RECOGNIZED = (1, 7)
    ACSE_NO_REASON_GIVEN = (2, 1)
    PROTOCOL_VERSION_NOT_SUPPORTED = (2, 2)
    TEMPORARY_CONGESTION = (3, 1)
    LOCAL_LIMIT_EXCEEDED = (3, 2)

    @property
    def source(self) -> int:
        """Table 9-21 source: 1 service user, 2 provider (ACSE), 3 provider (presentation)."""
        source: int = self.value[0]
        return source

    @property
    def reason(self) -> int:
        """Table 9-21 reason/diagnostic for that source."""
        reason: int = self.value[1]
        return reason


_VALID_REASONS: dict[int, frozenset[int]] = {
    RejectSource.SERVICE_USER: frozenset({1, 2, 3, 7}),
    RejectSource.SERVICE_PROVIDER_ACSE: frozenset({1, 2}),
    RejectSource.SERVICE_PROVIDER_PRESENTATION: frozenset({1, 2}),
}


def make_reject(result: int, source: int, reason: int) -> AAssociateRJ:
    """An A-ASSOCIATE-RJ, checked against Table 9-21 (reserved codes are refused)."""
    if result not in (RejectResult.PERMANENT, RejectResult.TRANSIENT):
        raise ValueError(f"A-ASSOCIATE-RJ result must be 1 or 2, not {result}")
    reasons = _VALID_REASONS.get(source)
    if reasons is None:
        raise ValueError(f"A-ASSOCIATE-RJ source must be 1, 2 or 3, not {source}")
    if reason not in reasons:
        raise ValueError(f"A-ASSOCIATE-RJ reason {reason} is not defined for source {source}")
    return AAssociateRJ(result=result, source=source, reason=reason)


def reject_for(cause: RejectCause, *, transient: bool = False) -> AAssociateRJ:
    """An A-ASSOCIATE-RJ for a named Table 9-21 cause (permanent unless ``transient``)."""
    result = RejectResult.TRANSIENT if transient else RejectResult.PERMANENT
    return make_reject(result, cause.source, cause.reason)


def check_application_context(rq: AAssociateRQ) -> AAssociateRJ | None:
    """The service-user rejection for an application context other than DICOM's, or None."""
    if rq.application_context_name == APPLICATION_CONTEXT_NAME:
        return None
    return reject_for(RejectCause.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED)

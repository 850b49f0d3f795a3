"""Answering an association request: access control, user identity, negotiation."""

from __future__ import annotations

import inspect
from collections.abc import Coroutine
from typing import Any

from . import evt
from .association import Association
from .establishment import accept, reject
from .events import Event
from .handlers import call_handler
from .logs import get_logger
from .negotiation_cache import AnswerKey, Negotiated
from .presentation import PresentationContext
from .ul.negotiation import (
    SupportedContext,
    negotiate_as_acceptor,
    negotiate_async_ops_as_acceptor,
)
from .wire.codec import encode_pdu
from .wire.codes import (
    APPLICATION_CONTEXT_NAME,
    RejectReasonACSE,
    RejectReasonPresentation,
    RejectReasonUser,
    RejectResult,
    RejectSource,
)
from .wire.items import (
    AsyncOpsWindow,
    PresentationContextRQ,
    RoleSelection,
    UserIdentityAC,
    UserInformation,
)
from .wire.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ

__all__ = ["decide"]

log = get_logger("aiodimse.association")

Rejection = tuple[int, int, int]

_LOCAL_LIMIT = (
    RejectResult.TRANSIENT,
    RejectSource.SERVICE_PROVIDER_PRESENTATION,
    RejectReasonPresentation.LOCAL_LIMIT_EXCEEDED,
)
_CALLED_UNKNOWN = (
    RejectResult.PERMANENT,
    RejectSource.SERVICE_USER,
    RejectReasonUser.CALLED_AE_TITLE_NOT_RECOGNIZED,
)
_CALLING_UNKNOWN = (
    RejectResult.PERMANENT,
    RejectSource.SERVICE_USER,
    RejectReasonUser.CALLING_AE_TITLE_NOT_RECOGNIZED,
)
_APP_CONTEXT = (
    RejectResult.PERMANENT,
    RejectSource.SERVICE_USER,
    RejectReasonUser.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
)
# The access hook failed: user code, so no more specific reason is known.
_NO_REASON = (
    RejectResult.PERMANENT,
    RejectSource.SERVICE_USER,
    RejectReasonUser.NO_REASON_GIVEN,
)
# Failed user authentication: pynetdicom's convention (PS3.7 gives no code).
_NOT_AUTHENTICATED = (
    RejectResult.PERMANENT,
    RejectSource.SERVICE_PROVIDER_ACSE,
    RejectReasonACSE.NO_REASON_GIVEN,
)


def _checks(assoc: Association, rq: AAssociateRQ) -> Rejection | None:
    """The rules that need no user code: limits, application context, AE titles."""
    ae, server = assoc.ae, assoc.server
    # Also takes the server's slot, held until the connection ends. Over a limit
    # (maximum_associations, per address, per calling AE), or closing: refused.
    if server is not None and not server.admit(assoc, rq.calling_ae_title):
        return _LOCAL_LIMIT
    if rq.application_context_name != APPLICATION_CONTEXT_NAME:
        return _APP_CONTEXT
    our_title = server.ae_title if server is not None else ae.ae_title
    if ae.require_called_aet and rq.called_ae_title != our_title:
        return _CALLED_UNKNOWN
    if ae.require_calling_aet and rq.calling_ae_title not in ae.require_calling_aet:
        return _CALLING_UNKNOWN
    return None


async def _hook(assoc: Association) -> Rejection | None:
    """The user's access hook (plain or async). One that raises or answers other than
    None or (result, source, reason) rejects: a broken hook must not admit anyone,
    nor leave the requestor waiting for an answer."""
    ae = assoc.ae
    if ae.access_hook is None:
        return None
    try:
        answer = ae.access_hook(assoc)
        if inspect.isawaitable(answer):
            answer = await answer
        if answer is None:
            return None
        result, source, reason = answer
        return int(result), int(source), int(reason)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # the hook's own
        log.warning("the access hook failed (%s: %s): rejecting the association",
                    type(exc).__name__, exc)
        return _NO_REASON


async def _identity(assoc: Association, rq: AAssociateRQ) -> tuple[Rejection | None, bytes | None]:
    """EVT_USER_ID: (rejection or None, positive response or None)."""
    item = rq.user_information.user_identity_rq
    bound = assoc.handlers.get(evt.EVT_USER_ID)
    if item is None or not bound:
        return None, None  # no check: accept without a positive response (PS3.7 D.3.3.7)
    event = Event(assoc, evt.EVT_USER_ID, request=item)
    try:
        answer = await call_handler(bound[0], event)
        verified, response = answer
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # the handler's own
        log.warning("EVT_USER_ID handler raised %s: rejecting the association: %s",
                    type(exc).__name__, exc)
        return _NOT_AUTHENTICATED, None
    if not verified:
        return _NOT_AUTHENTICATED, None
    if item.positive_response_requested:
        return None, bytes(response or b"")
    return None, None


def decide(assoc: Association, rq: AAssociateRQ) -> Coroutine[Any, Any, None] | None:
    """Accept or reject ``rq`` on ``assoc``'s behalf.

    Answers at once when no user code is involved; otherwise returns the coroutine
    that runs the access hook and EVT_USER_ID handler, for the caller to schedule
    as a task (user code always runs inside a task).
    """
    rejection = _checks(assoc, rq)
    user_code = assoc.ae.access_hook is not None or (
        rq.user_information.user_identity_rq is not None
        and bool(assoc.handlers.get(evt.EVT_USER_ID))
    )
    if rejection is not None or not user_code:
        _answer(assoc, rq, rejection, None)
        return None
    return _decide_with_user_code(assoc, rq)


async def _decide_with_user_code(assoc: Association, rq: AAssociateRQ) -> None:
    rejection = await _hook(assoc)
    response = None
    if rejection is None:
        rejection, response = await _identity(assoc, rq)
    _answer(assoc, rq, rejection, response)


def _negotiate(assoc: Association, rq: AAssociateRQ) -> Negotiated:
    """Negotiate ``rq``: remembered per server, for the same proposal and configuration."""
    server = assoc.server
    ui = rq.user_information
    invoked, performed = assoc.ae.maximum_async_ops
    window_wanted = (invoked, performed)
    if server is None:
        return _negotiate_now((), rq.presentation_contexts, ui.role_selection,
                              ui.async_ops_window, window_wanted)
    supported = tuple(server.contexts.values())
    cache = server.negotiations
    found = cache.find(rq, supported, window_wanted)
    if found is None:
        found = _negotiate_now(supported, rq.presentation_contexts, ui.role_selection,
                               ui.async_ops_window, window_wanted)
        cache.keep(rq, window_wanted, found)
    return found


def _negotiate_now(
    supported: tuple[SupportedContext, ...],
    proposed: tuple[PresentationContextRQ, ...],
    roles: tuple[RoleSelection, ...],
    proposed_window: AsyncOpsWindow | None,
    window_wanted: tuple[int, int],
) -> Negotiated:
    negotiated = negotiate_as_acceptor(proposed, roles, supported)
    invoked, performed = window_wanted
    window, limits = negotiate_async_ops_as_acceptor(
        proposed_window, AsyncOpsWindow(max_invoked=invoked, max_performed=performed)
    )
    accepted = tuple(
        PresentationContext(
            c.context_id, c.abstract_syntax, c.transfer_syntax, c.local_scu, c.local_scp
        )
        for c in negotiated.accepted.values()
    )
    return Negotiated(negotiated, window, limits, accepted)


def _answer(
    assoc: Association, rq: AAssociateRQ, rejection: Rejection | None, response: bytes | None
) -> None:
    """Send the A-ASSOCIATE-RJ, or negotiate and send the A-ASSOCIATE-AC."""
    ae = assoc.ae
    if rejection is not None:
        result, source, reason = rejection  # logged by the association, in words
        reject(assoc, AAssociateRJ(result=result, source=source, reason=reason))
        if assoc.server is not None:
            assoc.server.rejected(assoc)
        if assoc.observer is not None:
            assoc.observer.rejected(result, source, reason)
        return
    found_negotiation = _negotiate(assoc, rq)
    negotiated, limits = found_negotiation.negotiation, found_negotiation.limits
    key: AnswerKey = (rq.called_ae_title, rq.calling_ae_title, ae.maximum_pdu_size,
                      ae.implementation_class_uid, ae.implementation_version_name)
    found = found_negotiation.answer(key) if response is None else None
    if found is not None:  # the same request, answered the same way: reuse the bytes
        ac, encoded = found
    else:
        info = UserInformation(
            maximum_length=ae.maximum_pdu_size,
            implementation_class_uid=ae.implementation_class_uid,
            implementation_version_name=ae.implementation_version_name,
            async_ops_window=found_negotiation.window,
            role_selection=negotiated.roles,
            user_identity_ac=(
                UserIdentityAC(server_response=response) if response is not None else None
            ),
        )
        ac = AAssociateAC(
            called_ae_title=rq.called_ae_title,
            calling_ae_title=rq.calling_ae_title,
            presentation_contexts=negotiated.contexts,
            user_information=info,
        )
        encoded = encode_pdu(ac)
        if response is None:
            found_negotiation.keep_answer(key, ac, encoded)
    accept(assoc, ac, list(found_negotiation.accepted), limits.local_max_invoked,
           limits.peer_max_invoked, encoded=encoded)
    if assoc.observer is not None:
        assoc.observer.accepted()

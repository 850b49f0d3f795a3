"""Requesting an association: build the A-ASSOCIATE-RQ, connect, read the answer."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import Any

from .aio.protocol import DULProtocol
from .association import Association, AssociationError
from .handlers import Handlers
from .logs import get_logger
from .presentation import PresentationContext, RequestedContext
from .settings import AESettings
from .ul.config import ULConfig
from .ul.machine import UpperLayer
from .ul.negotiation import async_ops_limits_as_requestor, negotiate_as_requestor
from .wire.items import (
    AsyncOpsWindow,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityRQ,
    UserInformation,
)
from .wire.pdus import AAssociateAC, AAssociateRQ

__all__ = ["open_association", "build_request", "interpret_accept"]

log = get_logger("aiodimse.association")


def build_request(
    ae: AESettings,
    contexts: Sequence[RequestedContext],
    *,
    called_ae_title: str,
    max_pdu: int,
    ext_neg: Sequence[Any],
) -> AAssociateRQ:
    """The A-ASSOCIATE-RQ for these contexts (IDs 1, 3, 5, ...) and extra items."""
    if not contexts:
        raise ValueError("no presentation contexts to request: add_requested_context() first")
    if len(contexts) > 128:
        raise ValueError("at most 128 presentation contexts can be requested")
    proposed = tuple(
        PresentationContextRQ(
            context_id=2 * i + 1,
            abstract_syntax=c.abstract_syntax,
            transfer_syntaxes=c.transfer_syntaxes,
        )
        for i, c in enumerate(contexts)
    )
    window = ae.async_ops_window
    async_item = AsyncOpsWindow(max_invoked=window[0], max_performed=window[1]) if window else None
    identity = None
    for item in ext_neg:
        if isinstance(item, AsyncOpsWindow):
            async_item = item
        elif isinstance(item, UserIdentityRQ):
            identity = item
        elif not isinstance(
            item, (RoleSelection, SOPClassExtendedNegotiation, SOPClassCommonExtendedNegotiation)
        ):
            raise TypeError(f"not an extended negotiation item: {item!r}")
    info = UserInformation(
        maximum_length=max_pdu,
        implementation_class_uid=ae.implementation_class_uid,
        implementation_version_name=ae.implementation_version_name,
        async_ops_window=async_item,
        role_selection=tuple(i for i in ext_neg if isinstance(i, RoleSelection)),
        extended_negotiation=tuple(
            i for i in ext_neg if isinstance(i, SOPClassExtendedNegotiation)
        ),
        common_extended_negotiation=tuple(
            i for i in ext_neg if isinstance(i, SOPClassCommonExtendedNegotiation)
        ),
        user_identity_rq=identity,
    )
    return AAssociateRQ(
        called_ae_title=called_ae_title,
        calling_ae_title=ae.ae_title,
        presentation_contexts=proposed,
        user_information=info,
    )


def interpret_accept(
    assoc: Association, ac: AAssociateAC
) -> tuple[list[PresentationContext], list[tuple[int, str, int]], int, int]:
    """Accepted contexts, rejected (id, abstract syntax, reason) and window limits."""
    rq = assoc.proposal
    if rq is None:
        raise AssociationError("no request to compare the answer with")
    ui = rq.user_information
    result = negotiate_as_requestor(rq.presentation_contexts, ui.role_selection, ac)
    limits = async_ops_limits_as_requestor(
        ui.async_ops_window, ac.user_information.async_ops_window
    )
    contexts = [
        PresentationContext(
            c.context_id, c.abstract_syntax, c.transfer_syntax, c.local_scu, c.local_scp
        )
        for c in result.accepted.values()
    ]
    rejected = [(r.context_id, r.abstract_syntax, r.result) for r in result.rejected.values()]
    return contexts, rejected, limits.local_max_invoked, limits.peer_max_invoked


def _connect_problem(exc: BaseException, timeout: float | None) -> str:
    """The reason a connection failed, in words (not the exception's repr)."""
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer within {timeout:g}s" if timeout is not None else "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


async def open_association(
    ae: AESettings,
    addr: str,
    port: int,
    *,
    contexts: Sequence[RequestedContext],
    called_ae_title: str,
    max_pdu: int,
    ext_neg: Sequence[Any],
    handlers: Handlers,
    ssl_context: ssl.SSLContext | None,
    bind_address: tuple[str, int] | None,
    server_hostname: str | None,
) -> Association:
    """Connect, send the request and wait for the answer (ACSE timeout)."""
    loop = asyncio.get_running_loop()
    rq = build_request(ae, contexts, called_ae_title=called_ae_title, max_pdu=max_pdu,
                       ext_neg=ext_neg)
    ul = UpperLayer(
        requestor=True,
        config=ULConfig(
            artim_timeout=ae.artim_timeout,
            associate_timeout=ae.acse_timeout,
            release_timeout=ae.acse_timeout,
            max_pdata_cap=ae.max_pdata_cap,
        ),
    )
    assoc = Association(ae, is_requestor=True, handlers=handlers, loop=loop)
    assoc.proposal = rq
    assoc.interpret_accept = interpret_accept
    assoc.requestor.ae_title = ae.ae_title
    assoc.requestor.maximum_length = max_pdu
    assoc.requestor.implementation_class_uid = ae.implementation_class_uid
    assoc.requestor.implementation_version_name = ae.implementation_version_name
    assoc.acceptor.ae_title = called_ae_title
    proto = DULProtocol(ul, assoc, loop)
    proto.request_association(rq)
    try:
        await asyncio.wait_for(
            loop.create_connection(
                lambda: proto,
                addr,
                port,
                ssl=ssl_context,
                local_addr=bind_address,
                server_hostname=server_hostname if ssl_context is not None else None,
            ),
            ae.connection_timeout,
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise AssociationError(
            f"cannot connect to {addr}:{port}: {_connect_problem(exc, ae.connection_timeout)}"
        ) from exc
    try:
        await assoc.wait_established()
    except asyncio.CancelledError:
        assoc.abort()
        raise
    return assoc

"""Setting an association up: the A-ASSOCIATE indications, the acceptor's answer,
and who the two ends are (``ServiceUser``).

Functions over the association (typed with ``Establishing``), not an object of
their own: nothing is made per association and nothing holds it. The association
calls the ``on_*`` functions by the upper layer's event type (``Association.ul_events``);
the acceptor's decision (acceptor.py) answers through ``accept`` and ``reject``.
Once the answer is out, the association starts data transfer itself
(``Association.begin_transfer``): that is its own state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from . import evt
from .association_log import (
    DEBUG,
    INFO,
    debug_cached,
    debug_on,
    enabled,
    log,
    log_lines,
    who,
)
from .describe import describe_associate_rq, describe_rejection
from .errors import AiodimseError, AssociationError, AssociationRejectedError
from .errors import describe_rejection as rejection_words
from .handlers import Handlers
from .logs import peer_of
from .notifications import notify
from .wire.pdus import AAssociateAC, AAssociateRJ

if TYPE_CHECKING:
    from .aio.protocol import DULProtocol
    from .presentation import PresentationContext
    from .ul.events import AssociateAccepted, AssociateIndication, AssociateRejected
    from .wire.pdus import AAssociateRQ

__all__ = ["Accepted", "Establishing", "ServiceUser", "accept", "on_associate_ac",
           "on_associate_rj", "on_associate_rq", "reject"]

# What the requestor's reading of an A-ASSOCIATE-AC gives (requestor.interpret_accept):
# the accepted contexts, the rejected ones (ID, abstract syntax, result), the limits.
Accepted = tuple[list["PresentationContext"], list[tuple[int, str, int]], int, int]


@dataclass(slots=True)
class ServiceUser:
    """One end of an association, as pynetdicom's ``assoc.requestor``/``acceptor``."""

    ae_title: str = ""
    address: str = ""
    port: int = 0
    maximum_length: int = 0
    implementation_class_uid: str = ""
    implementation_version_name: str | None = None
    user_identity: Any = None


class Establishing(Protocol):
    """What setting up asks of its association."""

    is_requestor: bool
    is_acceptor: bool
    requestor: ServiceUser
    acceptor: ServiceUser
    proposal: AAssociateRQ | None
    rejected_contexts: list[tuple[int, str, int]]
    handlers: Handlers
    loop: asyncio.AbstractEventLoop

    @property
    def proto(self) -> DULProtocol | None: ...

    @property
    def decide(self) -> Callable[[Any, AAssociateRQ], Coroutine[Any, Any, None] | None] | None:
        """The server's decision (acceptor.decide), or None: nobody can accept."""

    @property
    def interpret_accept(self) -> Callable[[Any, AAssociateAC], Accepted] | None:
        """The requestor's reading of an A-ASSOCIATE-AC (requestor.interpret_accept)."""

    def begin_transfer(self, ac: AAssociateAC, contexts: list[PresentationContext],
                       peer_max: int, invoke_limit: int, perform_limit: int) -> None: ...

    def rejected(self, err: AssociationRejectedError) -> None: ...

    def track(self, task: asyncio.Task[Any]) -> None: ...

    def abort(self, *, source: int = 0, reason: int = 0) -> None: ...


def on_associate_rq(assoc: Establishing, ev: AssociateIndication) -> None:
    """Acceptor: note who asks, then hand the request to the server's decision."""
    rq = ev.pdu
    ui = rq.user_information
    peer = assoc.requestor
    peer.ae_title = rq.calling_ae_title
    peer.maximum_length = ui.maximum_length or 0
    peer.implementation_class_uid = ui.implementation_class_uid
    peer.implementation_version_name = ui.implementation_version_name
    peer.user_identity = ui.user_identity_rq
    assoc.acceptor.ae_title = rq.called_ae_title
    assoc.proposal = rq
    if debug_cached(DEBUG) is not False and debug_on():  # (quiet: no call)
        log_lines(f"received from {peer_of(assoc)}:", describe_associate_rq(rq))
    if assoc.handlers.notifies:
        notify(assoc, evt.EVT_REQUESTED)
    decide = assoc.decide
    if decide is None:  # not from a server: nobody can accept
        reject(assoc, AAssociateRJ(result=1, source=1, reason=1))
        return
    pending = decide(assoc, rq)  # None: answered already
    if pending is not None:
        assoc.track(assoc.loop.create_task(pending))


def accept(assoc: Establishing, ac: AAssociateAC, contexts: list[PresentationContext],
           invoke_limit: int, perform_limit: int, *, encoded: bytes | None = None) -> None:
    """Acceptor: send the A-ASSOCIATE-AC (unless the request is gone) and start;
    ``encoded``: ``ac`` encoded already (the negotiation cache's)."""
    proto = assoc.proto
    if proto is None or not proto.accept(ac, encoded):
        return
    ui = ac.user_information
    us = assoc.acceptor
    us.maximum_length = ui.maximum_length or 0
    us.implementation_class_uid = ui.implementation_class_uid
    us.implementation_version_name = ui.implementation_version_name
    assoc.begin_transfer(ac, contexts, assoc.requestor.maximum_length, invoke_limit,
                         perform_limit)


def reject(assoc: Establishing, rj: AAssociateRJ) -> None:
    """Acceptor: send the A-ASSOCIATE-RJ (unless the request is gone)."""
    proto = assoc.proto
    if proto is None or not proto.reject(rj):
        return
    if enabled(INFO):
        log.info("rejected %s: %s", who(assoc), rejection_words(rj.result, rj.source, rj.reason))
    assoc.rejected(AssociationRejectedError(rj.result, rj.source, rj.reason))


def on_associate_ac(assoc: Establishing, ev: AssociateAccepted) -> None:
    """Requestor: the peer accepted; work out the contexts and limits, and start."""
    ac = ev.pdu
    try:
        if assoc.interpret_accept is None:
            raise AssociationError("no request to compare the answer with")
        contexts, rejected, invoke_limit, perform_limit = assoc.interpret_accept(assoc, ac)
    except AiodimseError as exc:
        log.warning("unusable A-ASSOCIATE-AC: %s", exc)
        assoc.abort()
        return
    ui = ac.user_information
    peer = assoc.acceptor
    peer.maximum_length = ui.maximum_length or 0
    peer.implementation_class_uid = ui.implementation_class_uid
    peer.implementation_version_name = ui.implementation_version_name
    peer.user_identity = ui.user_identity_ac
    assoc.rejected_contexts = rejected
    assoc.begin_transfer(ac, contexts, peer.maximum_length, invoke_limit, perform_limit)


def on_associate_rj(assoc: Establishing, ev: AssociateRejected) -> None:
    """Requestor: the peer rejected the association."""
    rj = ev.pdu
    if enabled(INFO):
        log.info("%s: %s", who(assoc), describe_rejection(rj))
    assoc.rejected(AssociationRejectedError(rj.result, rj.source, rj.reason))

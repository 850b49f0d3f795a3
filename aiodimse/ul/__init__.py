"""Layer 2: the PS3.8 upper-layer state machine and association negotiation (sans-IO)."""

from __future__ import annotations

from .config import ULConfig
from .events import (
    AbortCause,
    Aborted,
    AssociateAccepted,
    AssociateIndication,
    AssociateRejected,
    CloseTransport,
    DataIndication,
    ReleaseConfirmation,
    ReleaseIndication,
    ULEvent,
)
from .machine import UpperLayer
from .negotiation import (
    AcceptorNegotiation,
    NegotiatedContext,
    OperationsLimits,
    RejectCause,
    RejectedContext,
    RequestorNegotiation,
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
from .states import Action, Event, State
from .table import TRANSITIONS

__all__ = [
    "UpperLayer",
    "ULConfig",
    "State",
    "Event",
    "Action",
    "TRANSITIONS",
    "ULEvent",
    "AssociateIndication",
    "AssociateAccepted",
    "AssociateRejected",
    "DataIndication",
    "ReleaseIndication",
    "ReleaseConfirmation",
    "Aborted",
    "AbortCause",
    "CloseTransport",
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

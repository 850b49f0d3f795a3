"""Layer 1: PS3.8 PDUs and items, their codec and the incremental receive buffer."""

from __future__ import annotations

from .codec import (
    A_RELEASE_RP_BYTES,
    A_RELEASE_RQ_BYTES,
    PDU_HEADER_SIZE,
    PDV_HEADER_SIZE,
    decode_pdu,
    encode_pdata,
    encode_pdu,
    encode_single_pdv,
)
from .codes import (
    APPLICATION_CONTEXT_NAME,
    AbortReason,
    AbortSource,
    ContextResult,
    ItemType,
    PDUType,
    RejectReasonACSE,
    RejectReasonPresentation,
    RejectReasonUser,
    RejectResult,
    RejectSource,
    UserIdentityType,
)
from .items import (
    AsyncOpsWindow,
    MaximumLength,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UnknownItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from .pdus import (
    PDU,
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    Fragment,
    PDataTF,
)
from .reader import DEFAULT_READ_AHEAD, PDUReader

__all__ = [
    # codec
    "encode_pdu",
    "decode_pdu",
    "encode_pdata",
    "encode_single_pdv",
    "PDU_HEADER_SIZE",
    "PDV_HEADER_SIZE",
    "A_RELEASE_RQ_BYTES",
    "A_RELEASE_RP_BYTES",
    # reader
    "PDUReader",
    "DEFAULT_READ_AHEAD",
    # PDUs
    "PDU",
    "AAssociateRQ",
    "AAssociateAC",
    "AAssociateRJ",
    "PDV",
    "Fragment",
    "PDataTF",
    "AReleaseRQ",
    "AReleaseRP",
    "AAbort",
    # items
    "PresentationContextRQ",
    "PresentationContextAC",
    "MaximumLength",
    "AsyncOpsWindow",
    "RoleSelection",
    "SOPClassExtendedNegotiation",
    "SOPClassCommonExtendedNegotiation",
    "UserIdentityRQ",
    "UserIdentityAC",
    "UnknownItem",
    "UserInformation",
    # codes
    "PDUType",
    "ItemType",
    "AbortSource",
    "AbortReason",
    "RejectResult",
    "RejectSource",
    "RejectReasonUser",
    "RejectReasonACSE",
    "RejectReasonPresentation",
    "ContextResult",
    "UserIdentityType",
    "APPLICATION_CONTEXT_NAME",
]

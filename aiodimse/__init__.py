"""aiodimse: an asyncio-native DICOM network stack (PS3.8 upper layer, PS3.7 DIMSE).

The public API mirrors pynetdicom's names, made async::

    ae = AE("MY_SCU")
    ae.add_requested_context("1.2.840.10008.1.1")
    async with ae.associate("127.0.0.1", 11112) as assoc:
        status = await assoc.send_c_echo()
"""

from __future__ import annotations

from . import evt
from .ae import AE, AssociateRequest
from .association import (
    Association,
    AssociationAbortedError,
    AssociationError,
    AssociationRejectedError,
    DIMSETimeoutError,
    ServiceUser,
)
from .errors import (
    AiodimseError,
    DIMSEError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from .events import Event
from .presentation import (
    DEFAULT_TRANSFER_SYNTAXES,
    PresentationContext,
    RequestedContext,
    SupportedContext,
    build_context,
    build_role,
)
from .server import Server
from .wire.items import (
    AsyncOpsWindow,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityRQ,
)

__all__ = [
    "__version__",
    "AE",
    "AssociateRequest",
    "Association",
    "Server",
    "ServiceUser",
    "Event",
    "evt",
    "build_context",
    "build_role",
    "PresentationContext",
    "RequestedContext",
    "SupportedContext",
    "DEFAULT_TRANSFER_SYNTAXES",
    "AsyncOpsWindow",
    "RoleSelection",
    "SOPClassExtendedNegotiation",
    "SOPClassCommonExtendedNegotiation",
    "UserIdentityRQ",
    "AiodimseError",
    "ProtocolError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "DIMSEError",
    "AssociationError",
    "AssociationRejectedError",
    "AssociationAbortedError",
    "DIMSETimeoutError",
]

__version__ = "0.1.0"

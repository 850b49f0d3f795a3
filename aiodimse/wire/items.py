"""Items and user-information sub-items of A-ASSOCIATE PDUs (PS3.8 9.3.2-9.3.3, PS3.7 D).

Frozen, slotted, keyword-only dataclasses, validated when built. Building one with a
bad value raises ``ValueError``; the decoder turns that into a ``RemoteProtocolError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
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
]


def _check_context_id(context_id: int) -> None:
    if not (1 <= context_id <= 255 and context_id % 2 == 1):
        raise ValueError(f"presentation context ID must be odd, 1-255: {context_id}")


def _check_u16(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must fit 16 bits: {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PresentationContextRQ:
    """Item 0x20: one abstract syntax (0x30) and one or more transfer syntaxes (0x40)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_context_id(self.context_id)
        if not self.transfer_syntaxes:
            raise ValueError("a proposed presentation context needs a transfer syntax")


@dataclass(frozen=True, slots=True, kw_only=True)
class PresentationContextAC:
    """Item 0x21: the acceptor's result for one proposed context.

    ``result`` is a ``ContextResult`` value (kept as int). ``transfer_syntax`` is
    significant only when the result is acceptance; it is "" when absent.
    """

    context_id: int
    result: int
    transfer_syntax: str = ""

    def __post_init__(self) -> None:
        _check_context_id(self.context_id)
        if not 0 <= self.result <= 0xFF:
            raise ValueError(f"context result must fit a byte: {self.result}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MaximumLength:
    """Sub-item 0x51: the largest P-DATA-TF PDU-length the sender accepts; 0 = no limit."""

    maximum_length: int

    def __post_init__(self) -> None:
        if not 0 <= self.maximum_length <= 0xFFFFFFFF:
            raise ValueError(f"maximum length must fit 32 bits: {self.maximum_length}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AsyncOpsWindow:
    """Sub-item 0x53: outstanding operations invoked / performed; 0 = unlimited."""

    max_invoked: int
    max_performed: int

    def __post_init__(self) -> None:
        _check_u16("max_invoked", self.max_invoked)
        _check_u16("max_performed", self.max_performed)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleSelection:
    """Sub-item 0x54. In a request: roles proposed; in an answer: roles accepted."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SOPClassExtendedNegotiation:
    """Sub-item 0x56: service-class-specific application information, kept as bytes."""

    sop_class_uid: str
    application_information: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class SOPClassCommonExtendedNegotiation:
    """Sub-item 0x57 (request only in PS3.7; accepted and ignored in an answer)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UserIdentityRQ:
    """Sub-item 0x58. ``identity_type`` is a ``UserIdentityType`` value (kept as int)."""

    identity_type: int
    positive_response_requested: bool
    primary_field: bytes
    secondary_field: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.identity_type <= 0xFF:
            raise ValueError(f"user identity type must fit a byte: {self.identity_type}")
        # PS3.7 D.3.3.7.1: the secondary field is non-empty only for username+passcode.
        if self.secondary_field and self.identity_type != 2:
            raise ValueError("a secondary field is only allowed for identity type 2")


@dataclass(frozen=True, slots=True, kw_only=True)
class UserIdentityAC:
    """Sub-item 0x59: the server response (empty for username types)."""

    server_response: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownItem:
    """An item or sub-item this library does not know: kept raw, otherwise ignored."""

    item_type: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInformation:
    """Item 0x50, held by meaning rather than as a list of sub-items.

    ``maximum_length`` is None when the peer sent no 0x51 sub-item (treated as 0).
    """

    maximum_length: int | None = 16382
    implementation_class_uid: str = ""
    implementation_version_name: str | None = None
    async_ops_window: AsyncOpsWindow | None = None
    role_selection: tuple[RoleSelection, ...] = ()
    extended_negotiation: tuple[SOPClassExtendedNegotiation, ...] = ()
    common_extended_negotiation: tuple[SOPClassCommonExtendedNegotiation, ...] = ()
    user_identity_rq: UserIdentityRQ | None = None
    user_identity_ac: UserIdentityAC | None = None
    unknown: tuple[UnknownItem, ...] = field(default=())

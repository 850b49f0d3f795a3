"""Presentation contexts as the user configures and sees them.

``RequestedContext`` and ``SupportedContext`` (layer 2's) are what an AE proposes
and accepts;
``PresentationContext`` is one context that an association has accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pydicom.uid as _pydicom_uid
from pydicom.uid import AllTransferSyntaxes as _PYDICOM_SYNTAXES

from .ul.negotiation import SupportedContext
from .wire.items import RoleSelection

__all__ = [
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_BIG_ENDIAN",
    "DEFAULT_TRANSFER_SYNTAXES",
    "VERIFICATION",
    "ALL_TRANSFER_SYNTAXES",
    "STORAGE_SOP_CLASSES",
    "StoragePresentationContexts",
    "AllStoragePresentationContexts",
    "RequestedContext",
    "SupportedContext",
    "PresentationContext",
    "build_context",
    "build_role",
]

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

# The same order as pynetdicom's defaults, so ported code negotiates alike.
DEFAULT_TRANSFER_SYNTAXES: tuple[str, ...] = (
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
)

VERIFICATION = "1.2.840.10008.1.1"


# SOP classes and transfer syntaxes by their pydicom keyword ("CTImageStorage"), so
# that contexts can be named as pynetdicom's sop_class constants name them.
_UIDS: dict[str, tuple[str, str, str, str, str]] = (
    _pydicom_uid.UID_dictionary)  # type: ignore[attr-defined]  # (public, not re-exported)
_BY_KEYWORD = {entry[4]: uid for uid, entry in _UIDS.items()
               if entry[1] in ("SOP Class", "Transfer Syntax", "Meta SOP Class") and entry[4]}


def _check_uid(uid: str) -> str:
    uid = str(uid).strip().rstrip("\0")
    uid = _BY_KEYWORD.get(uid, uid)
    if not uid or len(uid) > 64 or any(c not in "0123456789." for c in uid):
        raise ValueError(f"not a valid UID: {uid!r}")
    return uid


def _syntaxes(transfer_syntax: str | Iterable[str] | None) -> tuple[str, ...]:
    if transfer_syntax is None:
        return DEFAULT_TRANSFER_SYNTAXES
    if isinstance(transfer_syntax, str):
        return (_check_uid(transfer_syntax),)
    out = tuple(dict.fromkeys(_check_uid(ts) for ts in transfer_syntax))
    if not out:
        raise ValueError("at least one transfer syntax is needed")
    return out


ALL_TRANSFER_SYNTAXES: tuple[str, ...] = tuple(dict.fromkeys(
    (*DEFAULT_TRANSFER_SYNTAXES, *(str(ts) for ts in _PYDICOM_SYNTAXES))))
"""Every transfer syntax pydicom knows, uncompressed first: a storage SCP that
supports a class with these accepts instances as their senders offer them (the
archive stores what it gets; nothing is transcoded)."""

STORAGE_SOP_CLASSES: dict[str, str] = {
    entry[4]: uid for uid, entry in _UIDS.items()
    if entry[1] == "SOP Class" and "Storage" in entry[0]
    and not entry[4].startswith(("StorageCommitment", "StorageManagement"))
}
"""Every storage SOP class pydicom knows (retired ones too), by keyword."""


@dataclass(frozen=True, slots=True)
class RequestedContext:
    """A context to propose as association requestor."""

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] = DEFAULT_TRANSFER_SYNTAXES


@dataclass(frozen=True, slots=True)
class PresentationContext:
    """An accepted context of an association, from the local side's point of view.

    Has pynetdicom's ``PresentationContextTuple`` fields (context_id,
    abstract_syntax, transfer_syntax) plus the roles the local side may take.
    """

    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    as_scu: bool = True
    as_scp: bool = True


def build_context(
    abstract_syntax: str, transfer_syntax: str | Sequence[str] | None = None
) -> RequestedContext:
    """A context to pass in ``contexts=`` of ``AE.associate``, as pynetdicom's."""
    return RequestedContext(_check_uid(abstract_syntax), _syntaxes(transfer_syntax))


def build_role(uid: str, scu_role: bool = False, scp_role: bool = False) -> RoleSelection:
    """An SCP/SCU role selection proposal for ``ext_neg=`` of ``AE.associate``."""
    return RoleSelection(sop_class_uid=_check_uid(uid), scu_role=scu_role, scp_role=scp_role)


def syntaxes(transfer_syntax: str | Iterable[str] | None) -> tuple[str, ...]:
    """Normalise a transfer syntax argument (None gives the defaults)."""
    return _syntaxes(transfer_syntax)


def check_uid(uid: str) -> str:
    """Validate and normalise a UID argument."""
    return _check_uid(uid)


AllStoragePresentationContexts: list[RequestedContext] = [
    RequestedContext(uid) for uid in STORAGE_SOP_CLASSES.values()
]
"""A context per storage SOP class pydicom knows (over 200): for an SCP's
``add_supported_context``. Too many to request: one association carries at most 128
contexts (PS3.8 9.3.2.2), and ``AE.add_requested_context`` refuses the 129th. A
sender proposes the classes it will send, as pynetdicom's storescu does (a context
per SOP class and transfer syntax of the files given)."""

StoragePresentationContexts: list[RequestedContext] = AllStoragePresentationContexts[:120]
"""The first 120 storage contexts, as pynetdicom's list of that name: room for 8 more
(Verification, say) in one association request."""

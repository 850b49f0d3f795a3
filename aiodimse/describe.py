"""Association PDUs and presentation contexts in words, for logs a person reads.

``-d`` shows what was proposed and answered (as DCMTK's and pynetdicom's debug
output do); ``serve`` logs one line per association at INFO. UIDs are given with
their names from pydicom's dictionary. Peer-supplied text (AE titles, UIDs) is
escaped here too: a log line must not carry a peer's control characters.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydicom.uid import UID

from .dimse.commands import is_valid_uid
from .errors import describe_rejection as rejection_words
from .logs import escape
from .wire.items import PresentationContextAC, UserInformation
from .wire.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ

__all__ = [
    "uid_name",
    "printable",
    "describe_associate_rq",
    "describe_associate_ac",
    "describe_rejection",
    "accepted_summary",
    "CONTEXT_RESULTS",
]

CONTEXT_RESULTS = {
    0: "accepted",
    1: "user rejection",
    2: "no reason (provider rejection)",
    3: "abstract syntax not supported",
    4: "transfer syntaxes not supported",
}
_IDENTITY_TYPES = {1: "username", 2: "username and passcode", 3: "Kerberos", 4: "SAML",
                   5: "JWT"}


def printable(text: str, limit: int = 80) -> str:
    """``text`` with control characters escaped (``logs.escape``), cut at ``limit``."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return escape(text)


def _name(uid: str) -> str:
    """The dictionary name of a valid UID, else "" (an invalid one is never handed to
    pydicom, whose validation warning would carry and keep the peer's text)."""
    if not is_valid_uid(uid):
        return ""
    name = str(UID(uid).name)
    return "" if name == uid else name


def uid_name(uid: str) -> str:
    """``uid`` with its dictionary name, as ``1.2.840.10008.1.1 (Verification SOP Class)``."""
    name = _name(uid)
    shown = printable(uid, 64)
    return f"{shown} ({name})" if name else shown


def _roles(ui: UserInformation) -> dict[str, tuple[bool, bool]]:
    return {r.sop_class_uid: (r.scu_role, r.scp_role) for r in ui.role_selection}


def _role_text(scu: bool, scp: bool) -> str:
    return {(True, False): "SCU", (False, True): "SCP", (True, True): "SCU and SCP",
            (False, False): "neither"}[(scu, scp)]


def _user_info(ui: UserInformation) -> list[str]:
    lines = [
        f"  Max PDU length: {ui.maximum_length or 'no limit'}",
        f"  Implementation: {printable(ui.implementation_class_uid, 64)}"
        + (f" {printable(ui.implementation_version_name, 16)}"
           if ui.implementation_version_name else ""),
    ]
    if ui.async_ops_window is not None:
        w = ui.async_ops_window
        lines.append(f"  Async operations window: invoked {w.max_invoked}, "
                     f"performed {w.max_performed}")
    for item in ui.extended_negotiation:
        lines.append(f"  SOP class extended negotiation: {uid_name(item.sop_class_uid)} "
                     f"({len(item.application_information)} bytes)")
    for common in ui.common_extended_negotiation:
        lines.append(f"  Common extended negotiation: {uid_name(common.sop_class_uid)} "
                     f"service class {uid_name(common.service_class_uid)}")
    if ui.user_identity_rq is not None:
        ident = ui.user_identity_rq
        kind = _IDENTITY_TYPES.get(ident.identity_type, f"type {ident.identity_type}")
        lines.append(f"  User identity: {kind}"
                     + (", response requested" if ident.positive_response_requested else ""))
    if ui.user_identity_ac is not None:
        lines.append(f"  User identity response: "
                     f"{len(ui.user_identity_ac.server_response)} bytes")
    if ui.unknown:
        lines.append(f"  Unknown items ignored: "
                     f"{', '.join(f'0x{u.item_type:02X}' for u in ui.unknown)}")
    return lines


def describe_associate_rq(rq: AAssociateRQ) -> str:
    """The A-ASSOCIATE-RQ, one fact a line (for DEBUG)."""
    roles = _roles(rq.user_information)
    lines = [
        "A-ASSOCIATE-RQ",
        f"  Calling AE title: {printable(rq.calling_ae_title, 16)!s}",
        f"  Called AE title:  {printable(rq.called_ae_title, 16)!s}",
        f"  Application context: {uid_name(rq.application_context_name)}",
        *_user_info(rq.user_information),
        f"  Presentation contexts ({len(rq.presentation_contexts)}):",
    ]
    for pc in rq.presentation_contexts:
        role = roles.get(pc.abstract_syntax)
        lines.append(f"    {pc.context_id}: {uid_name(pc.abstract_syntax)}"
                     + (f", role {_role_text(*role)}" if role is not None else ""))
        lines.extend(f"       {uid_name(ts)}" for ts in pc.transfer_syntaxes)
    return "\n".join(lines)


def describe_associate_ac(ac: AAssociateAC, rq: AAssociateRQ | None = None) -> str:
    """The A-ASSOCIATE-AC, with each context's abstract syntax when the RQ is known."""
    proposed = {pc.context_id: pc.abstract_syntax for pc in rq.presentation_contexts} if rq else {}
    roles = _roles(ac.user_information)
    lines = [
        "A-ASSOCIATE-AC",
        *_user_info(ac.user_information),
        f"  Presentation contexts ({len(ac.presentation_contexts)}):",
    ]
    lines.extend(_context_line(pc, proposed, roles) for pc in ac.presentation_contexts)
    return "\n".join(lines)


def _context_line(pc: PresentationContextAC, proposed: dict[int, str],
                  roles: dict[str, tuple[bool, bool]]) -> str:
    abstract = proposed.get(pc.context_id)
    head = f"    {pc.context_id}: " + (uid_name(abstract) if abstract else "(abstract syntax "
                                       "not known here)")
    result = CONTEXT_RESULTS.get(pc.result, f"result {pc.result}")
    if pc.result != 0:
        return f"{head}: {result}"
    role = roles.get(abstract or "")
    return (f"{head}: accepted, {uid_name(pc.transfer_syntax)}"
            + (f", role {_role_text(*role)}" if role is not None else ""))


def describe_rejection(rj: AAssociateRJ) -> str:
    """The A-ASSOCIATE-RJ in words (PS3.8 Table 9-21)."""
    return f"A-ASSOCIATE-RJ: {rejection_words(rj.result, rj.source, rj.reason)}"


def accepted_summary(contexts: Iterable[tuple[str, str]]) -> str:
    """``name/transfer syntax`` pairs of the accepted contexts, on one line (for INFO)."""
    return ", ".join(f"{_name(a) or printable(a, 64)} ({_name(t) or printable(t, 64)})"
                     for a, t in contexts)

"""The association's log lines: messages at DEBUG, set-up and end at INFO.

Apart from the association so that it reads as the adapter it is; every function
here formats nothing unless its level is on. Callers on a per-association path ask
``debug_cached(level) is not False and enabled(level)``: with logging quiet, one
dict lookup and no call.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from .compat import level_cache_get
from .describe import accepted_summary, describe_associate_ac
from .logs import get_logger, peer_of
from .wire.pdus import AAssociateAC

__all__ = [
    "debug_on",
    "enabled",
    "log",
    "log_ended",
    "log_established",
    "log_handler_failure",
    "log_lines",
    "log_message",
    "who",
]

log = get_logger("aiodimse.association")

_debug = functools.partial(log.isEnabledFor, logging.DEBUG)
# logging's per-level answer cache, read on the per-message paths: a dict lookup
# instead of a Python call (None until isEnabledFor has filled it; logging clears
# it whenever levels change, and log.debug checks again anyway).
debug_cached = level_cache_get(log)
DEBUG = logging.DEBUG
INFO = logging.INFO


def debug_on() -> bool:
    """Whether DEBUG is on (``log.isEnabledFor``)."""
    return _debug()


def enabled(level: int) -> bool:
    """``log.isEnabledFor(level)``, from logging's per-level answers when it has one."""
    known = debug_cached(level)
    return log.isEnabledFor(level) if known is None else bool(known)


def log_message(direction: str, context_id: int, msg: Any, dataset: Any) -> None:
    """The DEBUG summary of one DIMSE message (nothing is formatted at INFO)."""
    ident = getattr(msg, "MessageID", None) or getattr(msg, "MessageIDBeingRespondedTo", "")
    status = getattr(msg, "Status", None)
    log.debug(
        "%s %s id=%s context=%d%s%s", direction, type(msg).__name__, ident, context_id,
        f" status=0x{status:04X}" if status is not None else "",
        f" dataset={len(dataset)} bytes" if dataset is not None else "",
    )


def log_handler_failure(what: str, exc: BaseException, assoc: object,
                        answer: str = "") -> None:
    """One line at WARNING (folded when it repeats), the traceback at DEBUG."""
    log.warning("%s handler raised %s for %s%s: %s", what, type(exc).__name__,
                peer_of(assoc), answer, exc)
    if _debug():
        log.debug("%s handler traceback", what, exc_info=exc)


def log_lines(head: str, text: str) -> None:
    """A multi-line description at DEBUG, a record per line (the log filter escapes
    line breaks inside one record, so that no peer text can start a line)."""
    log.debug("%s", head)
    for line in text.splitlines():
        log.debug("  %s", line)


def who(assoc: Any) -> str:
    """``association from CALLING@address:port to CALLED`` (or ``to`` as requestor)."""
    if assoc.is_acceptor:
        return (f"association from {peer_of(assoc)}:{assoc.requestor.port} "
                f"to {assoc.acceptor.ae_title}")
    return f"association to {peer_of(assoc)}:{assoc.acceptor.port}"


def log_established(assoc: Any, ac: AAssociateAC) -> None:
    """INFO: who, the accepted and rejected contexts, the PDU sizes; DEBUG: the AC."""
    if not enabled(INFO):  # (nor DEBUG, below it)
        return
    if _debug():
        log_lines(f"{'sent to' if assoc.is_acceptor else 'received from'} {peer_of(assoc)}:",
                  describe_associate_ac(ac, assoc.proposal))
    accepted = accepted_summary(
        (c.abstract_syntax, c.transfer_syntax) for c in assoc.accepted_contexts)
    refused = sum(1 for pc in ac.presentation_contexts if pc.result != 0)
    log.info("%s accepted: %s%s; max PDU %d/%d", who(assoc), accepted or "no contexts",
             f"; {refused} context(s) refused" if refused else "",
             assoc.requestor.maximum_length, assoc.acceptor.maximum_length)


def log_ended(assoc: Any, why: str, seconds: float, requests: int) -> None:
    """INFO: who, why it ended, how long it lasted and how many requests it carried."""
    if enabled(INFO):
        log.info("%s ended: %s after %.3f s, %d request(s) received", who(assoc), why,
                 seconds, requests)

"""The negotiations a server gave, per proposal, and the A-ASSOCIATE-ACs it sent.

Negotiation is a pure function of the proposal (presentation contexts, role
selections, asynchronous operations window), the window we want and the server's
supported contexts: a server sees the same few proposals again and again. One cache
per server (``Server.negotiations``), emptied when its supported contexts change.
The acceptor asks it and tells it; nothing else reads it.
"""

from __future__ import annotations

from typing import Any

from . import caches
from .presentation import PresentationContext
from .ul.negotiation import AcceptorNegotiation, OperationsLimits, SupportedContext
from .wire.items import AsyncOpsWindow, PresentationContextRQ, RoleSelection
from .wire.pdus import AAssociateAC, AAssociateRQ

__all__ = ["AnswerKey", "Negotiated", "NegotiationCache"]

# The A-ASSOCIATE-AC of a negotiation also depends on these (AE titles and settings).
AnswerKey = tuple[str, str, int | None, str, str | None]
_Key = tuple[
    tuple[PresentationContextRQ, ...],
    tuple[RoleSelection, ...],
    AsyncOpsWindow | None,
    tuple[int, int],
]

CACHE_SIZE = 256
"""Most proposals remembered (the table is emptied when full)."""
CACHED_PROPOSAL_MAX = 8192
"""Characters of UIDs a remembered proposal may hold: 256 of them hold a few MiB."""
ANSWERS_SIZE = 16
"""Most A-ASSOCIATE-ACs remembered per negotiation (AE title pairs and settings)."""


class Negotiated:
    """One negotiation's outcome, and the answers given for it with their bytes."""

    __slots__ = ("accepted", "answers", "limits", "negotiation", "window")

    def __init__(self, negotiation: AcceptorNegotiation, window: AsyncOpsWindow | None,
                 limits: OperationsLimits, accepted: tuple[PresentationContext, ...]) -> None:
        self.negotiation = negotiation
        self.window = window
        self.limits = limits
        self.accepted = accepted
        self.answers: dict[AnswerKey, tuple[AAssociateAC, bytes]] = {}

    def answer(self, key: AnswerKey) -> tuple[AAssociateAC, bytes] | None:
        """The A-ASSOCIATE-AC (and its encoding) given before for ``key``, if any."""
        return self.answers.get(key)

    def keep_answer(self, key: AnswerKey, ac: AAssociateAC, encoded: bytes) -> None:
        """Remember an answer without a user identity response (never credentials)."""
        if not caches.enabled:
            return
        if len(self.answers) >= ANSWERS_SIZE:
            self.answers.clear()
        self.answers[key] = (ac, encoded)


class NegotiationCache:
    """Negotiations by proposal, valid for one tuple of supported contexts.

    Also by the request object's identity: the codec hands back one object for equal
    request bytes (``wire.codec``), so the same object again is found without hashing
    its contexts. The entry holds the request, so its id cannot be reused while the
    entry lives, and it is checked with ``is``: a fresh object for the same bytes
    only misses this table, never gets a wrong answer.
    """

    __slots__ = ("_by_key", "_by_request", "_supported")

    def __init__(self) -> None:
        self._supported: tuple[SupportedContext, ...] = ()
        self._by_key: dict[_Key, Negotiated] = {}
        self._by_request: dict[int, tuple[AAssociateRQ, tuple[int, int], Negotiated]] = {}

    def __len__(self) -> int:
        """Proposals remembered."""
        return len(self._by_key)

    @property
    def by_identity(self) -> int:
        """Request objects remembered by identity."""
        return len(self._by_request)

    def entries(self) -> list[Negotiated]:
        """The negotiations remembered."""
        return list(self._by_key.values())

    def clear(self) -> None:
        self._by_key.clear()
        self._by_request.clear()

    def find(self, rq: AAssociateRQ, supported: tuple[SupportedContext, ...],
             window: tuple[int, int]) -> Negotiated | None:
        """The negotiation remembered for ``rq`` under ``supported`` and ``window``."""
        if supported != self._supported:
            self.clear()
            self._supported = supported
            return None
        seen = self._by_request.get(id(rq))
        if seen is not None and seen[0] is rq and seen[1] == window:
            return seen[2]
        found = self._by_key.get(_key(rq, window))
        if found is not None:
            self._by_identity(rq, window, found)
        return found

    def keep(self, rq: AAssociateRQ, window: tuple[int, int], found: Negotiated) -> None:
        """Remember ``found`` for ``rq`` (unless caches are off or the proposal is long)."""
        if not caches.enabled or _proposal_size(rq) > CACHED_PROPOSAL_MAX:
            return
        if len(self._by_key) >= CACHE_SIZE:
            self.clear()
        self._by_key[_key(rq, window)] = found
        self._by_identity(rq, window, found)

    def _by_identity(self, rq: AAssociateRQ, window: tuple[int, int], found: Negotiated) -> None:
        if rq.user_information.user_identity_rq is not None or not caches.enabled:
            return  # never keep credentials around
        by_request = self._by_request
        if len(by_request) >= CACHE_SIZE:
            by_request.clear()
        by_request[id(rq)] = (rq, window, found)


def _key(rq: AAssociateRQ, window: tuple[int, int]) -> _Key:
    ui = rq.user_information
    return rq.presentation_contexts, ui.role_selection, ui.async_ops_window, window


def _proposal_size(rq: AAssociateRQ) -> int:
    """Characters of UIDs in the proposal: what a cache entry's key holds."""
    size = 0
    for pc in rq.presentation_contexts:
        size += len(pc.abstract_syntax) + sum(len(ts) for ts in pc.transfer_syntaxes)
    for role in rq.user_information.role_selection:
        size += len(role.sop_class_uid)
    return size


def _server_size(server: Any) -> int:
    cache: NegotiationCache = server.negotiations
    return len(cache) + cache.by_identity


def _answers_size(server: Any) -> int:
    return sum(len(n.answers) for n in server.negotiations.entries())


caches.register("server.negotiations", "server", _server_size)
caches.register("server.answers", "server", _answers_size)

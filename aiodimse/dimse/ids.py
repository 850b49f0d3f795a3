"""Message ID allocation and the asynchronous operations window (PS3.7 9.3.1, D.3.3.3).

Pure bookkeeping, one instance of each per association. Message IDs must be unique
among the invoker's outstanding requests; the window bounds how many requests are
outstanding in each direction (0 = unlimited, absent negotiation = 1).
"""

from __future__ import annotations

from aiodimse.errors import LocalProtocolError

__all__ = [
    "MessageIDAllocator",
    "OperationsWindow",
]

_MAX_ID = 0xFFFF


class MessageIDAllocator:
    """Hands out Message IDs 1..65535 in order, wrapping, skipping outstanding ones."""

    __slots__ = ("_next", "_outstanding")

    def __init__(self, *, first: int = 1) -> None:
        if not 1 <= first <= _MAX_ID:
            raise ValueError(f"first Message ID must be in 1..65535, not {first}")
        self._next = first
        self._outstanding: set[int] = set()

    def allocate(self) -> int:
        """Return a fresh ID and mark it outstanding until :meth:`release`.

        Raises LocalProtocolError when all 65535 IDs are outstanding.
        """
        outstanding = self._outstanding
        if len(outstanding) >= _MAX_ID:
            raise LocalProtocolError("all 65535 Message IDs are outstanding")
        candidate = self._next
        while candidate in outstanding:
            candidate = candidate + 1 if candidate < _MAX_ID else 1
        outstanding.add(candidate)
        self._next = candidate + 1 if candidate < _MAX_ID else 1
        return candidate

    def release(self, message_id: int) -> None:
        """Mark ``message_id`` answered (its final response arrived, or it was given up)."""
        self._outstanding.discard(message_id)

    def is_outstanding(self, message_id: int) -> bool:
        return message_id in self._outstanding

    @property
    def outstanding(self) -> frozenset[int]:
        return frozenset(self._outstanding)


class OperationsWindow:
    """Counts outstanding operations against the negotiated window.

    ``max_invoked`` bounds our own outstanding requests (the peer's max-operations-
    performed as negotiated); ``max_performed`` bounds the peer's requests we work
    on at once (our max-operations-performed). 0 means unlimited; with no
    negotiation both are 1 (synchronous mode).
    """

    __slots__ = ("invoked", "max_invoked", "max_performed", "performed")

    def __init__(self, *, max_invoked: int = 1, max_performed: int = 1) -> None:
        if max_invoked < 0 or max_performed < 0:
            raise ValueError("window limits must be >= 0 (0 = unlimited)")
        self.max_invoked = max_invoked
        self.max_performed = max_performed
        self.invoked = 0
        self.performed = 0

    def can_invoke(self) -> bool:
        """Whether one more request of ours may be sent now."""
        return self.max_invoked == 0 or self.invoked < self.max_invoked

    def start_invoke(self) -> None:
        """Count a request we send; LocalProtocolError if the window is full."""
        if not self.can_invoke():
            raise LocalProtocolError(
                f"{self.invoked} requests outstanding, the window allows {self.max_invoked}"
            )
        self.invoked += 1

    def finish_invoke(self) -> None:
        """Count the final response to one of our requests (or its abandonment)."""
        if self.invoked == 0:
            raise LocalProtocolError("no invoked operation is outstanding")
        self.invoked -= 1

    def can_perform(self) -> bool:
        """Whether one more peer request may be started now."""
        return self.max_performed == 0 or self.performed < self.max_performed

    def start_perform(self) -> bool:
        """Count a peer request we start; False means the peer overran the window.

        The request is counted either way; the caller decides whether to queue
        it, answer it, or abort (peers often ignore the window, so be liberal).
        """
        within = self.can_perform()
        self.performed += 1
        return within

    def finish_perform(self) -> None:
        """Count our final response to a peer request."""
        if self.performed == 0:
            raise LocalProtocolError("no performed operation is outstanding")
        self.performed -= 1

"""Read back pressure: stop reading an association's transport past its budgets.

What the DIMSE session holds (queued requests, a partial message) is charged to two
budgets: the association's own (``AE.maximum_association_buffered``) and, on a
server, the sum of all its associations (``AE.maximum_server_buffered``). Reading
stops past the association's budget while requests are queued (they will drain),
or past the server's; it restarts once the association is at half its budget (or
has nothing queued) and the server at half its own. A peer that sends faster than
its requests are answered waits in its own TCP window, not in our memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["BudgetServer", "ReadBudget"]

_A_contra = TypeVar("_A_contra", contravariant=True)
_O = TypeVar("_O")


class BudgetServer(Protocol[_A_contra]):
    """The server's side: the sum of what its associations hold."""

    def charge(self, assoc: _A_contra, delta: int) -> bool: ...

    def below_low_water(self) -> bool: ...

    def reading_held(self, assoc: _A_contra, held: bool) -> None: ...


class ReadBudget(Generic[_O]):
    """The bytes one association's session holds, charged to its budgets (module doc).

    ``hold(True)`` stops reading the transport, ``hold(False)`` restarts it;
    ``owner`` is the association, as the server knows it.
    """

    __slots__ = ("closed", "held", "hold", "limit", "owner", "reading_held", "server")

    def __init__(self, owner: _O, server: BudgetServer[_O] | None, limit: int,
                 hold: Callable[[bool], None]) -> None:
        self.owner = owner
        self.server = server
        self.limit = limit
        self.hold = hold
        self.held = 0  # bytes charged to the budgets
        self.reading_held = False  # reading stopped by a budget
        self.closed = False

    def sync(self, held: int, queued: int) -> None:
        """The session holds ``held`` bytes now, ``queued`` requests among them."""
        delta, self.held = held - self.held, held
        self._charge(delta, queued)

    def _charge(self, delta: int, queued: int) -> None:
        if self.closed:  # given back
            return
        server = self.server
        server_over = server is not None and server.charge(self.owner, delta)
        limit = self.limit
        if not self.reading_held:
            if server_over or (self.held > limit and queued):
                self._hold(True)
        elif delta < 0 and (self.held <= limit >> 1 or not queued):
            self.check(queued)

    def check(self, queued: int) -> None:
        """Restart reading if no budget holds it now (the server asks as it drains)."""
        if not self.reading_held:
            return
        server = self.server
        if server is not None and not server.below_low_water():
            return
        if self.held <= self.limit >> 1 or not queued:
            self._hold(False)

    def _hold(self, hold: bool) -> None:
        self.reading_held = hold
        if self.server is not None:
            self.server.reading_held(self.owner, hold)
        self.hold(hold)

    def give_back(self) -> None:
        """The association ended: what it held is given back to the server's budget."""
        self.closed = True
        if self.held:
            if self.server is not None:
                self.server.charge(self.owner, -self.held)
                self.server.reading_held(self.owner, False)
            self.held = 0

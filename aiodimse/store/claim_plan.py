"""Which due items one claim of the delivery queue takes, for any backend.

A backend reads the due items earliest first (an ordered group's items together,
in queue order, where its first one comes) and hands each to ``ClaimPlan.take``;
the plan applies ``DeliveryQueue.claim_due``'s rules. Two questions let a claim
among many destinations read little (a UPS change fans out one group per
subscriber): ``wanted`` says, before a group is read, whether any of it could be
taken; ``full`` says, of the next item, that the claim has every destination it
may take and this one is another, so the scan can stop and read only the
chosen destinations' items (``chosen_destinations``).
"""

from __future__ import annotations

from collections.abc import Collection

__all__ = ["ClaimPlan"]


class ClaimPlan:
    """One claim's choice: the ids to lease, in order (``chosen``)."""

    def __init__(self, limit: int, *, per_destination: int | None,
                 max_destinations: int | None, destination: str | None,
                 skip_destinations: Collection[str], held: Collection[int]) -> None:
        self.limit = limit
        self.per_destination = per_destination
        self.max_destinations = max_destinations
        self.destination = destination
        self.skip = skip_destinations
        self.held = held
        self.chosen: list[int] = []
        self.counts: dict[str, int] = {}  # per destination, taken so far
        self._taken: dict[tuple[str, str], int] = {}  # per ordered group, taken so far
        self._picked: set[int] = set()

    def done(self) -> bool:
        """Whether it has ``limit`` items."""
        return len(self.chosen) >= self.limit

    def wanted(self, dest: str) -> bool:
        """Whether an item of ``dest`` could still be taken."""
        if dest in self.skip:
            return False
        count = self.counts.get(dest, 0)
        if self.per_destination is not None and count >= self.per_destination:
            return False
        return not (count == 0 and self.max_destinations is not None
                    and len(self.counts) >= self.max_destinations)

    def full(self, dest: str) -> bool:
        """Whether the scan may stop at an item of ``dest``: every destination the
        claim may take is chosen, and ``dest`` is not one of them."""
        return (self.max_destinations is not None and self.destination is None
                and len(self.counts) >= self.max_destinations and dest not in self.counts)

    def chosen_destinations(self) -> list[str]:
        """The destinations chosen that could take more (read after a ``full`` stop)."""
        return [dest for dest in self.counts if self.wanted(dest)]

    def take(self, id_: int, dest: str, ordering: str | None, ahead: int) -> None:
        """Take the item if the rules allow (``ahead``: pending items before it in
        its ordered group; an id below 0 is a group passed over unread)."""
        if id_ < 0 or id_ in self.held or id_ in self._picked or not self.wanted(dest):
            return
        if ordering is not None and ahead != self._taken.get((dest, ordering), 0):
            return  # an earlier item of its group is not being taken with it
        self.counts[dest] = self.counts.get(dest, 0) + 1
        if ordering is not None:
            self._taken[dest, ordering] = ahead + 1
        self.chosen.append(id_)
        self._picked.add(id_)

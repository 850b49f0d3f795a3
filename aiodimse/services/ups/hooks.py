"""What the UPS workitem service tells the subscription side, and what it lets it read."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from pydicom import Dataset


class WorkitemSource(Protocol):
    """Read access to workitems for the subscription side."""
    async def workitem(self, uid: str) -> Dataset | None:
        """The workitem's current attributes (as N-GET with no list would return), or None."""
    def workitems(self, identifier: Dataset | None) -> AsyncIterator[Dataset]:
        """Every workitem matching ``identifier`` under the UPS C-FIND matching rules
        (None: every workitem not yet deleted)."""
    def matches(self, identifier: Dataset, workitem: Dataset) -> bool:
        """Whether one workitem matches a filter (filtered global subscriptions)."""

class WorkitemEvents(Protocol):
    """Called by the workitem service after each change is durably stored."""
    async def created(self, workitem: Dataset) -> None:
        """A new SCHEDULED workitem (global subscribers gain it; UPS State Report to them)."""
    async def state_changed(self, workitem: Dataset, reason: str | None) -> None:
        """Procedure Step State changed (IN PROGRESS, COMPLETED, CANCELED): UPS State Report."""
    async def cancel_requested(self, workitem: Dataset, request: Dataset) -> None:
        """N-ACTION Request UPS Cancel accepted on an IN PROGRESS item: UPS Cancel Requested
        (``request``: the N-ACTION's Action Information: reason, contact name/URI)."""
    async def progress(self, workitem: Dataset) -> None:
        """N-SET changed the Procedure Step Progress Information Sequence: UPS Progress Report."""
    async def assigned(self, workitem: Dataset) -> None:
        """N-SET / N-CREATE set Scheduled Station Name / Human Performers: UPS Assigned."""
    async def deletion_locked(self, uid: str) -> bool:
        """Whether a subscriber holds a deletion lock on a final-state workitem (keep it)."""

class NoEvents:
    """The WorkitemEvents of a UPS service without subscriptions: does nothing."""
    async def created(self, workitem: Dataset) -> None: return None
    async def state_changed(self, workitem: Dataset, reason: str | None) -> None: return None
    async def cancel_requested(self, workitem: Dataset, request: Dataset) -> None: return None
    async def progress(self, workitem: Dataset) -> None: return None
    async def assigned(self, workitem: Dataset) -> None: return None
    async def deletion_locked(self, uid: str) -> bool: return False

"""Unified Procedure Step (PS3.4 Annex CC): workitems, their service and its hooks."""

from __future__ import annotations

from .hooks import NoEvents, WorkitemEvents, WorkitemSource

__all__ = ["NoEvents", "WorkitemEvents", "WorkitemSource"]

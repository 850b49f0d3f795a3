"""Unified Procedure Step (PS3.4 Annex CC): workitems, their service and its hooks."""

from __future__ import annotations

from .hooks import NoEvents, WorkitemEvents, WorkitemSource
from .service import UPSService
from .uids import UPS_PULL, UPS_PUSH, UPS_QUERY, UPS_WATCH

__all__ = ["NoEvents", "WorkitemEvents", "WorkitemSource", "UPSService", "UPS_PUSH",
           "UPS_PULL", "UPS_WATCH", "UPS_QUERY"]

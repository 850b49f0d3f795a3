"""Event types that handlers bind to, named as in pynetdicom's ``evt`` module.

Intervention events expect an answer from their handler (a status); notification
events only inform, and any number of handlers may be bound to them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EventType",
    "EVT_C_ECHO",
    "EVT_C_STORE",
    "EVT_N_ACTION",
    "EVT_N_CREATE",
    "EVT_N_DELETE",
    "EVT_N_EVENT_REPORT",
    "EVT_N_GET",
    "EVT_N_SET",
    "EVT_USER_ID",
    "EVT_REQUESTED",
    "EVT_ACCEPTED",
    "EVT_ESTABLISHED",
    "EVT_REJECTED",
    "EVT_RELEASED",
    "EVT_ABORTED",
    "EVT_CONN_OPEN",
    "EVT_CONN_CLOSE",
    "INTERVENTION_EVENTS",
    "NOTIFICATION_EVENTS",
]


@dataclass(frozen=True, slots=True, eq=False)
class EventType:
    """An event kind: its pynetdicom name and description.

    Compared and hashed by identity (each is a module constant): handler lookups
    by event type happen per request.
    """

    name: str
    description: str
    is_intervention: bool

    @property
    def is_notification(self) -> bool:
        return not self.is_intervention

    def __repr__(self) -> str:
        return self.name


EVT_C_ECHO = EventType("EVT_C_ECHO", "C-ECHO request received", True)
EVT_C_STORE = EventType("EVT_C_STORE", "C-STORE request received", True)
EVT_N_ACTION = EventType("EVT_N_ACTION", "N-ACTION request received", True)
EVT_N_CREATE = EventType("EVT_N_CREATE", "N-CREATE request received", True)
EVT_N_DELETE = EventType("EVT_N_DELETE", "N-DELETE request received", True)
EVT_N_EVENT_REPORT = EventType("EVT_N_EVENT_REPORT", "N-EVENT-REPORT request received", True)
EVT_N_GET = EventType("EVT_N_GET", "N-GET request received", True)
EVT_N_SET = EventType("EVT_N_SET", "N-SET request received", True)
EVT_USER_ID = EventType("EVT_USER_ID", "User identity negotiation received", True)

EVT_REQUESTED = EventType("EVT_REQUESTED", "Association requested", False)
EVT_ACCEPTED = EventType("EVT_ACCEPTED", "Association request accepted", False)
EVT_ESTABLISHED = EventType("EVT_ESTABLISHED", "Association established", False)
EVT_REJECTED = EventType("EVT_REJECTED", "Association request rejected", False)
EVT_RELEASED = EventType("EVT_RELEASED", "Association released", False)
EVT_ABORTED = EventType("EVT_ABORTED", "Association aborted", False)
EVT_CONN_OPEN = EventType("EVT_CONN_OPEN", "Connection opened", False)
EVT_CONN_CLOSE = EventType("EVT_CONN_CLOSE", "Connection closed", False)

INTERVENTION_EVENTS = (
    EVT_C_ECHO,
    EVT_C_STORE,
    EVT_N_ACTION,
    EVT_N_CREATE,
    EVT_N_DELETE,
    EVT_N_EVENT_REPORT,
    EVT_N_GET,
    EVT_N_SET,
    EVT_USER_ID,
)
NOTIFICATION_EVENTS = (
    EVT_REQUESTED,
    EVT_ACCEPTED,
    EVT_ESTABLISHED,
    EVT_REJECTED,
    EVT_RELEASED,
    EVT_ABORTED,
    EVT_CONN_OPEN,
    EVT_CONN_CLOSE,
)

"""What a service answers when its store fails: one mapping for every service.

A backend raises ``StoreError`` and says only whether it is out of room
(``full``) or cannot be reached now (``unavailable``: a database server down); the
DIMSE status is chosen here, by the request's command:

==================  ==================================  ==================================
``StoreError``      N-services (N-CREATE, N-SET, N-GET, C-STORE, C-FIND, C-GET, C-MOVE
                    N-ACTION, N-DELETE, N-EVENT-REPORT)
==================  ==================================  ==================================
``full``            0x0213 Resource limitation          0xA700 Refused: out of resources
``unavailable``     0x0213 Resource limitation          0xA700 Refused: out of resources
anything else       0x0110 Processing failure           0x0110 Processing failure
==================  ==================================  ==================================

An unreachable database is a resource that is missing for a while, as a full one
is: the requester may try again later (issue 23), and nothing was stored.

0x0213 and 0x0110 are PS3.7 C.4's general statuses (0x0213 is the one the
N-services list for a lack of resources); the C-services have their own
out-of-resources code, 0xA7xx (PS3.4 B.2.3, C.4). The Error Comment says which
store failed and whether it is full; the cause (a path, SQLite's words) is logged
at ERROR, never sent to the peer; an ``unavailable`` one at DEBUG
(``store_log_level``), since the backend logs the outage once, not per request.
"""

from __future__ import annotations

import logging

from ..status import PROCESSING_FAILURE, RESOURCE_LIMITATION
from ..store.interface import StoreError

__all__ = ["OUT_OF_RESOURCES", "store_status", "store_comment", "store_log_level"]

OUT_OF_RESOURCES = 0xA700  # C-services: Refused, out of resources

_C_SERVICES = frozenset({0x0001, 0x0020, 0x0010, 0x0021})  # C-STORE, C-FIND, C-GET, C-MOVE


def store_status(exc: StoreError, command_field: int) -> int:
    """The status answering a request (of ``command_field``) whose store failed."""
    if not (exc.full or exc.unavailable):
        return PROCESSING_FAILURE
    return OUT_OF_RESOURCES if command_field in _C_SERVICES else RESOURCE_LIMITATION


def store_comment(exc: StoreError, store: str) -> str:
    """The Error Comment (at most 64 characters): which store, full or failed."""
    return f"the {store} store is {'full' if exc.full else 'unavailable'}"[:64]


def store_log_level(exc: StoreError) -> int:
    """The level a service logs ``exc`` at: an outage is logged once by the backend."""
    return logging.DEBUG if exc.unavailable else logging.ERROR

"""The ``Event`` object handed to handlers (pynetdicom's event contract).

Dataset properties decode on first access with the context's transfer syntax and
cache the result, so a handler that never looks at the data set costs no decoding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag, Tag

from . import evt
from .cancels import is_cancelled

if TYPE_CHECKING:
    from .presentation import PresentationContext

__all__ = ["Event"]

Decoder = Callable[[bytes | memoryview, str], Dataset]
_new = object.__new__
_now = time.time


class Event:
    """One event as a handler sees it.

    Members: ``assoc``, ``context``, ``event`` (the ``EventType``), ``name``,
    ``description``, ``request``, ``timestamp``, ``message_id`` and, per event type,
    the dataset properties of pynetdicom (see the docs for the full contract).
    """

    __slots__ = (
        "_data",
        "_dataset",
        "_decoder",
        "_extra",
        "_time",
        "assoc",
        "context",
        "event",
        "request",
    )

    def __init__(
        self,
        assoc: Any,
        event_type: evt.EventType,
        *,
        context: PresentationContext | None = None,
        request: Any = None,
        data: bytes | memoryview | None = None,
        decoder: Decoder | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.assoc = assoc
        self.event = event_type
        self.context = context
        self.request = request
        self._time = time.time()
        self._data = data
        self._decoder = decoder
        self._dataset: Dataset | None = None
        self._extra = extra

    @classmethod
    def for_request(  # noqa: PLR0917 - once per request; positional arguments are cheapest
        cls,
        assoc: Any,
        event_type: evt.EventType,
        context: PresentationContext,
        request: Any,
        data: bytes | memoryview | None,
        decoder: Decoder,
    ) -> Event:
        """The event of an incoming request: ``__init__`` without keyword arguments.

        Built once per request, so it fills the slots directly (the handler path is
        the server's hot path).
        """
        event = _new(cls)
        event.assoc = assoc
        event.event = event_type
        event.context = context
        event.request = request
        event._time = _now()
        event._data = data
        event._decoder = decoder
        event._dataset = None
        event._extra = None
        return event

    @property
    def timestamp(self) -> datetime:
        """When the event was created (as pynetdicom's ``datetime.now()`` then)."""
        return datetime.fromtimestamp(self._time)

    @property
    def extra(self) -> dict[str, Any]:
        """Extra values of notification events (empty for the others)."""
        if self._extra is None:
            self._extra = {}
        return self._extra

    def __repr__(self) -> str:
        return f"<Event {self.event.name} message_id={self.message_id}>"

    @property
    def name(self) -> str:
        return self.event.name

    @property
    def description(self) -> str:
        return self.event.description

    @property
    def message_id(self) -> int | None:
        return getattr(self.request, "MessageID", None)

    @property
    def dataset_length(self) -> int:
        """Bytes of the request's data set as received (0: none), known before decoding."""
        data = self._data
        return len(data) if data else 0

    # -- per-event properties --------------------------------------------------

    def _decoded(self, *allowed: evt.EventType) -> Dataset:
        if self.event not in allowed:
            raise AttributeError(f"{self.event.name} events have no such property")
        if self._dataset is None:
            data = self._data
            if not data or self._decoder is None or self.context is None:
                self._dataset = Dataset()
            else:
                self._dataset = self._decoder(data, self.context.transfer_syntax)
        return self._dataset

    @property
    def action_information(self) -> Dataset:
        """N-ACTION: the decoded Action Information (empty Dataset if none)."""
        return self._decoded(evt.EVT_N_ACTION)

    @property
    def action_type(self) -> int:
        """N-ACTION: the Action Type ID."""
        if self.event is not evt.EVT_N_ACTION:
            raise AttributeError(f"{self.event.name} events have no action_type")
        return int(self.request.ActionTypeID)

    @property
    def attribute_list(self) -> Dataset:
        """N-CREATE: the decoded Attribute List."""
        return self._decoded(evt.EVT_N_CREATE)

    @property
    def event_information(self) -> Dataset:
        """N-EVENT-REPORT: the decoded Event Information."""
        return self._decoded(evt.EVT_N_EVENT_REPORT)

    @property
    def event_type(self) -> int:
        """N-EVENT-REPORT: the Event Type ID."""
        if self.event is not evt.EVT_N_EVENT_REPORT:
            raise AttributeError(f"{self.event.name} events have no event_type")
        return int(self.request.EventTypeID)

    @property
    def modification_list(self) -> Dataset:
        """N-SET: the decoded Modification List."""
        return self._decoded(evt.EVT_N_SET)

    @property
    def dataset(self) -> Dataset:
        """C-STORE: the received instance, decoded on first access (no file meta).

        When it was streamed to a file (``dataset_path``), read from that file.
        """
        if self.event is not evt.EVT_C_STORE:
            raise AttributeError(f"{self.event.name} events have no dataset")
        if self._dataset is None:
            path = self.extra.get("dataset_path")
            if path is None:
                return self._decoded(evt.EVT_C_STORE)
            ds = dcmread(path, force=True)
            del ds.file_meta  # as in memory: the data set alone (file_meta is its own)
            self._dataset = ds
        return self._dataset

    @property
    def file_meta(self) -> FileMetaDataset:
        """C-STORE: File Meta Information for the instance, from its context and command."""
        if self.event is not evt.EVT_C_STORE:
            raise AttributeError(f"{self.event.name} events have no file_meta")
        meta = self.extra["file_meta"]
        if callable(meta):  # built on first use (store_scp)
            meta = self.extra["file_meta"] = meta()
        return cast(FileMetaDataset, meta)

    @property
    def dataset_path(self) -> Path:
        """C-STORE with ``AE.store_to_file``: the received instance as a Part 10 file.

        A temporary file, removed after the handler returns unless the handler moved
        it away (``os.replace`` it into an archive). AttributeError when not streamed.
        """
        if self.event is not evt.EVT_C_STORE or "dataset_path" not in self.extra:
            raise AttributeError(f"{self.event.name} event has no dataset_path "
                                 "(AE.store_to_file is off)")
        path: Path = self.extra["dataset_path"]
        return path

    @property
    def attribute_identifiers(self) -> list[BaseTag]:
        """N-GET: the requested attribute tags; [] means all attributes."""
        if self.event is not evt.EVT_N_GET:
            raise AttributeError(f"{self.event.name} events have no attribute_identifiers")
        tags = getattr(self.request, "AttributeIdentifierList", None) or ()
        return [Tag(t) for t in tags]

    # -- DIMSE-C (pynetdicom's names) ------------------------------------------------

    @property
    def identifier(self) -> Dataset:
        """C-FIND, C-GET, C-MOVE: the decoded request Identifier."""
        return self._decoded(evt.EVT_C_FIND, evt.EVT_C_GET, evt.EVT_C_MOVE)

    @property
    def move_destination(self) -> str:
        """C-MOVE: the Move Destination AE title."""
        if self.event is not evt.EVT_C_MOVE:
            raise AttributeError(f"{self.event.name} events have no move_destination")
        return str(self.request.MoveDestination)

    @property
    def is_cancelled(self) -> bool:
        """C-FIND, C-GET, C-MOVE: whether the peer sent a C-CANCEL-RQ for this request."""
        if self.event not in (evt.EVT_C_FIND, evt.EVT_C_GET, evt.EVT_C_MOVE):
            raise AttributeError(f"{self.event.name} events have no is_cancelled")
        return is_cancelled(self.assoc, self.message_id)

    # -- EVT_USER_ID (pynetdicom's names) ---------------------------------------------

    def _identity(self) -> Any:
        if self.event is not evt.EVT_USER_ID:
            raise AttributeError(f"{self.event.name} events have no user identity")
        return self.request

    @property
    def user_id_type(self) -> int:
        """EVT_USER_ID: 1 username, 2 username+passcode, 3 Kerberos, 4 SAML, 5 JWT."""
        return int(self._identity().identity_type)

    @property
    def primary_field(self) -> bytes:
        """EVT_USER_ID: the username, ticket, assertion or token."""
        return bytes(self._identity().primary_field)

    @property
    def secondary_field(self) -> bytes | None:
        """EVT_USER_ID: the passcode (type 2 only), else None."""
        value = bytes(self._identity().secondary_field)
        return value or None

"""Query/Retrieve SCP (PS3.4 Annex C) as a service, over the archive's query engine.

Patient Root and Study Root, FIND, GET and MOVE. The handlers are async generators
(serving_query.py drives them), so matches stream as the index yields them and a
C-CANCEL stops the generator between two of them:

* C-FIND: each match a pending response (0xFF00); a ``QueryError`` before any
  match is answered with its status and comment (0xA900, 0xC000);
* C-GET / C-MOVE: the number of instances, then each instance as its file (an
  :class:`InstanceFile`: the library's ``send_c_store`` streams a large one from
  disk, not loading it). A ``QueryError`` is answered as the final status.
* C-MOVE: the destination from the AE table (``[ae.TITLE]``); an unknown title is
  0xA801. The sub-association proposes one context per SOP class and transfer
  syntax of the instances (at most 128; instances past those fail), as stored:
  nothing is transcoded.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydicom.dataset import Dataset

from .. import evt
from ..archive import MODELS, QueryEngine, QueryError, QueryModel, UnableToProcess
from ..events import Event
from ..handlers import Binding
from ..logs import get_logger
from ..presentation import ALL_TRANSFER_SYNTAXES, RequestedContext
from ..serving_query import move_destination
from ..store.interface import ArchiveIndex, StoreError
from ..store.records import RetrieveItem
from .answers import status as status_dataset
from .base import Service, SOPClass
from .delivery import Peer
from .storage import STORAGE_CLASSES
from .store_status import store_comment, store_status

__all__ = ["InstanceFile", "QueryRetrieveSCP", "MAX_CONTEXTS"]

log = get_logger("aiodimse.qr")

MAX_CONTEXTS = 128  # presentation contexts in one association request (PS3.8 9.3.2.2)
_PENDING = 0xFF00
_COMMANDS = {"FIND": 0x0020, "GET": 0x0010, "MOVE": 0x0021}


class InstanceFile(os.PathLike[str]):
    """A stored instance to send: its path, with the UIDs the failed list needs."""

    __slots__ = ("SOPClassUID", "SOPInstanceUID", "path", "transfer_syntax")

    def __init__(self, item: RetrieveItem) -> None:
        self.path = item.path
        self.SOPClassUID = item.sop_class_uid
        self.SOPInstanceUID = item.sop_instance_uid
        self.transfer_syntax = item.transfer_syntax

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"InstanceFile({self.path!r})"


def _status(code: int, comment: str) -> tuple[Dataset, None]:
    return status_dataset(code, comment), None


def _refusal(exc: Exception, operation: str) -> tuple[Dataset, None]:
    """The final status for a request the engine or the store refused."""
    if isinstance(exc, QueryError):
        log.warning("C-%s refused with 0x%04X: %s", operation, exc.status, exc.comment)
        return _status(exc.status, exc.comment)
    assert isinstance(exc, StoreError)
    status = store_status(exc, _COMMANDS[operation])
    log.error("C-%s: %s: answering 0x%04X", operation, exc, status)
    return _status(status, store_comment(exc, "archive"))


def _identifier(event: Event) -> Dataset:
    """The request's identifier; one that does not decode is ``UnableToProcess``."""
    try:
        return event.identifier
    except Exception as exc:  # pydicom's many ways of failing on bad bytes
        raise UnableToProcess(f"the identifier does not decode: {type(exc).__name__}"
                              ) from exc


class QueryRetrieveSCP(Service):
    """Answers C-FIND, C-GET and C-MOVE from ``index``; ``peers`` is the AE table
    for C-MOVE destinations; ``retrieve_aet`` (our title) goes in C-FIND answers."""

    name = "query_retrieve"
    # C-GET sends on the requesting association: peers act as the storage SCP
    sop_classes = (
        *(SOPClass(uid) for uid in MODELS),
        *(SOPClass(uid, scp=False, scu=True, transfer_syntaxes=ALL_TRANSFER_SYNTAXES)
          for uid in STORAGE_CLASSES),
    )

    def __init__(self, index: ArchiveIndex, peers: Mapping[str, Peer] | None = None, *,
                 retrieve_aet: str | None = None) -> None:
        self.engine = QueryEngine(index, retrieve_aet=retrieve_aet)
        self.peers = dict(peers or {})
        self.matches = 0  # counters for the log
        self.refused = 0

    def handlers(self) -> list[Binding]:
        handler = {"FIND": (evt.EVT_C_FIND, self.on_c_find),
                   "GET": (evt.EVT_C_GET, self.on_c_get),
                   "MOVE": (evt.EVT_C_MOVE, self.on_c_move)}
        return [Binding(handler[m.operation][0], handler[m.operation][1], uid)
                for uid, m in MODELS.items()]

    @staticmethod
    def _model(event: Event) -> QueryModel:
        context = event.context
        assert context is not None  # (a request's event has its context)
        return MODELS[context.abstract_syntax]

    async def on_c_find(self, event: Event) -> AsyncIterator[Any]:
        try:
            matches = self.engine.find(self._model(event), _identifier(event))
            async for match in matches:
                self.matches += 1
                yield _PENDING, match
        except (QueryError, StoreError) as exc:
            self.refused += 1
            yield _refusal(exc, "FIND")

    async def on_c_get(self, event: Event) -> AsyncIterator[Any]:
        async for result in self._retrieve(event, None):
            yield result

    async def on_c_move(self, event: Event) -> AsyncIterator[Any]:
        async for result in self._retrieve(event, event.move_destination):
            yield result

    async def _retrieve(self, event: Event, destination: str | None) -> AsyncIterator[Any]:
        operation = "GET" if destination is None else "MOVE"
        if destination is not None:
            where = move_destination(self.peers, destination)
            if where[0] is None:  # unknown: 0xA801
                yield where
                return
        try:
            retrieval = self.engine.retrieval(self._model(event), _identifier(event))
            contexts = await _contexts(retrieval) if destination is not None else []
            count = await retrieval.count()
        except (QueryError, StoreError) as exc:
            self.refused += 1
            if destination is not None:
                yield where
            yield _refusal(exc, operation)  # in place of the count: the final status
            return
        if destination is not None:
            yield (*where[:2], {**(where[2] if len(where) > 2 else {}), "contexts": contexts})
        yield count
        async for item in retrieval:
            yield _PENDING, InstanceFile(item)


async def _contexts(retrieval: Any) -> list[RequestedContext]:
    """One context per SOP class and transfer syntax of the instances (at most 128)."""
    pairs: dict[tuple[str, str], None] = {}
    async for item in retrieval:
        pairs[(item.sop_class_uid, item.transfer_syntax)] = None
        if len(pairs) >= MAX_CONTEXTS:
            log.warning("C-MOVE of over %d kinds of instance: only the first are offered",
                        MAX_CONTEXTS)
            break
    return [RequestedContext(c, (ts,)) for c, ts in pairs] or [
        RequestedContext(STORAGE_CLASSES[0])]

"""C-FIND, C-GET and C-MOVE as SCP: driving the handler's generator (PS3.4 C.4).

A handler bound to EVT_C_FIND/EVT_C_GET/EVT_C_MOVE returns, as in pynetdicom, an
iterable of results: an async generator (pulled in the request's own task, one turn
of the loop a result: no task of its own per result), a plain generator or
other iterable (pulled on the AE's handler threads: it may block), or a coroutine
giving one. Each result is sent before the next is pulled, so a handler streams its
matches in bounded memory and a slow peer (the transport's write buffer) slows it.

* C-FIND: ``(status, identifier)`` pairs; a pending status (0xFF00/0xFF01) sends a
  match, any other status ends the request with it; the end of the iterable is
  0x0000.
* C-GET: the number of sub-operations first (or a ``(status Dataset, None)`` pair:
  the request refused with that status), then ``(status, dataset)`` pairs: a
  pending one is sent as a C-STORE-RQ to the peer on this association (it must
  have accepted the SCP role for the class: no context is a failed sub-operation),
  a pending C-GET-RSP with the counts follows; the final status is 0x0000, 0xB000
  (some failed or warned) or 0xA702 (all failed), with the Failed SOP Instance UID
  List (C.4.3.1.3).
* C-MOVE: the destination first, ``(addr, port)`` or ``(addr, port, kwargs for
  AE.associate)`` (``(None, None)``: unknown, 0xA801), then the count and data sets
  as C-GET, stored over a sub-association to the destination with the Move
  Originator fields (C.4.2).

Each result must come within the AE's ``handler_timeout`` (else the handler's
failure status). A C-CANCEL-RQ for the request sets ``event.is_cancelled``, stops the iterable
(interrupting an async generator waiting for its next result) and answers 0xFE00
with the counts so far. A raising handler is answered with pynetdicom's status
(0xC311, 0xC411, 0xC511), the association kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pydicom.dataset import Dataset

from . import evt
from .association_log import log
from .cancels import Running, find, table_of
from .datasets import decode_dataset, encode_dataset
from .dimse.messages import CCancelRQ, CFindRQ, CGetRQ, CMoveRQ, make_response
from .errors import AiodimseError
from .events import Event
from .handlers import BoundHandler, handler_threads
from .logs import peer_of
from .requests import RequestKind
from .substore import store_instance

if TYPE_CHECKING:
    from .dimse.assemble import ReceivedMessage
    from .dimse.session import DIMSESession
    from .presentation import PresentationContext

__all__ = ["move_destination", "serve_query"]

_EVENTS = {CFindRQ: evt.EVT_C_FIND, CGetRQ: evt.EVT_C_GET, CMoveRQ: evt.EVT_C_MOVE}
_PENDING = (0xFF00, 0xFF01)
_CANCEL = 0xFE00
_END = object()  # the iterable is exhausted
# a stand-in kind for ``Serving.unserved``'s refusal while the server stops
_REFUSED = RequestKind(evt.EVT_C_FIND, True, None, None)


def move_destination(table: Mapping[str, Any], title: str) -> tuple[Any, ...]:
    """A C-MOVE handler's first result from an AE table (title -> ``Peer``: host, port,
    ssl_context): ``(None, None)`` (0xA801) for a title it does not hold."""
    peer = table.get(title.strip())
    if peer is None:
        return None, None
    ssl_context = getattr(peer, "ssl_context", None)
    if ssl_context is not None:
        return peer.host, peer.port, {"ssl_context": ssl_context}
    return peer.host, peer.port


class Serving(Protocol):
    """What this module asks of serving.py's ``Serving`` (not imported: it imports us)."""

    contexts: dict[int, PresentationContext]
    loop: asyncio.AbstractEventLoop
    session: DIMSESession

    def dropped(self, assoc: Any, received: ReceivedMessage) -> None: ...

    def unserved(self, assoc: Any, received: ReceivedMessage, kind: RequestKind | None
                 ) -> None: ...


def serve_query(serving: Serving, assoc: Any, received: ReceivedMessage) -> bool:
    """Serve a C-FIND/GET/MOVE or C-CANCEL request; False if it is none of these, or
    no handler is bound for it (then it is answered as any unserved request)."""
    message: Any = received.message
    if type(message) is CCancelRQ:
        entry = find(assoc, message.MessageIDBeingRespondedTo)
        if entry is not None:
            log.info("C-CANCEL-RQ from %s for Message ID %d", peer_of(assoc),
                     message.MessageIDBeingRespondedTo)
            entry.cancel()
        serving.dropped(assoc, received)  # (C-CANCEL has no response)
        return True
    event_type = _EVENTS.get(type(message))
    if event_type is None:
        return False
    if assoc.draining:  # refused as the server stops (0xA700), as other C-services
        serving.unserved(assoc, received, _REFUSED)
        return True
    context = serving.contexts[received.context_id]
    handler = assoc.handlers.lookup(event_type, context.abstract_syntax)
    if handler is None:
        return False
    if assoc.observer is not None:
        assoc.observer.request_started(message, received.context_id)
    event = Event.for_request(assoc, event_type, context, message, received.dataset,
                              decode_dataset)
    entry = Running(serving.loop)
    table_of(assoc)[message.MessageID] = entry
    driver = _Driver(serving, assoc, received, event, entry)
    assoc.track(serving.loop.create_task(driver.run(handler)))
    return True


class _Source:
    """The handler's results, pulled one at a time, interruptible by a cancel."""

    def __init__(self, results: Any, assoc: Any) -> None:
        self.assoc = assoc
        self.aiter: AsyncIterator[Any] | None = None
        self.iter: Iterator[Any] | None = None
        if hasattr(results, "__aiter__"):
            self.aiter = results.__aiter__()
        else:
            self.iter = iter(results)

    async def next(self, running: Running) -> Any:
        """The next result, ``_END``; None if the request was cancelled meanwhile."""
        if self.aiter is not None:
            return await self._next_async(running)
        it = self.iter
        pull = handler_threads(self.assoc.ae).run(lambda: next(it, _END))  # type: ignore[arg-type]
        if not pull.done():
            limit = self.assoc.ae.handler_timeout
            try:
                await asyncio.wait((pull, running.waker), timeout=limit or None,
                                   return_when=asyncio.FIRST_COMPLETED)
            except BaseException:  # we are cancelled (the server stops): so is the pull
                pull.cancel()
                raise
        if not pull.done():  # cancelled, or over time, while the handler works
            pull.cancel()
            with contextlib.suppress(BaseException):
                await pull
            if not running.cancelled:
                raise TimeoutError(f"no result within the handler time limit "
                                   f"({self.assoc.ae.handler_timeout}s)")
            return None
        return pull.result()

    async def _next_async(self, running: Running) -> Any:
        """An async generator's next result, awaited in this task (no task and wait of
        its own per result): a C-CANCEL or the time limit cancels this await."""
        task = asyncio.current_task()
        assert task is not None
        stops: list[str] = []  # why we cancelled the await: "cancel", "time"

        def stop(why: str) -> None:
            stops.append(why)
            task.cancel()

        limit = self.assoc.ae.handler_timeout
        loop = asyncio.get_running_loop()
        timer = loop.call_later(limit, stop, "time") if limit else None
        running.interrupt = lambda: stop("cancel")
        try:
            # one turn of the loop a result, as a task a pull gave: the peer's C-CANCEL
            # and the other associations are served between two results
            await asyncio.sleep(0)
            return await self.aiter.__anext__()  # type: ignore[union-attr]
        except StopAsyncIteration:
            return _END
        except asyncio.CancelledError:
            if not stops or _still_cancelling(task, len(stops)):
                raise  # the server stops: not ours to swallow
            if running.cancelled:
                return None
            raise TimeoutError(f"no result within the handler time limit ({limit}s)"
                               ) from None
        finally:
            running.interrupt = None
            if timer is not None:
                timer.cancel()
            if stops:  # a generator that caught our cancel and went on: balanced too
                _uncancel(task, len(stops))

    async def close(self) -> None:
        """Stop the generator (its ``finally`` blocks run)."""
        aiter, it = self.aiter, self.iter
        self.aiter = self.iter = None
        try:
            if aiter is not None and hasattr(aiter, "aclose"):
                await aiter.aclose()
            elif it is not None and hasattr(it, "close"):
                await handler_threads(self.assoc.ae).run(it.close)
        except Exception as exc:
            log.warning("the handler's generator raised while closing: %s", exc)


def _uncancel(task: asyncio.Task[Any], times: int) -> None:
    """Take back our own ``task.cancel()`` calls (Python 3.11+ counts them)."""
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        for _ in range(times):
            uncancel()


def _still_cancelling(task: asyncio.Task[Any], ours: int) -> bool:
    """Whether someone else cancelled ``task`` too (3.11+; on 3.10: unknown, no)."""
    cancelling = getattr(task, "cancelling", None)
    return cancelling is not None and cancelling() > ours


async def _results(handler: BoundHandler, event: Event) -> Any:
    """Call the handler: its iterable of results."""
    func, args = handler.func, handler.args
    if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
        return func(event, *args)  # nothing runs until the first pull
    if handler.is_async:
        return await func(event, *args)
    result = await handler_threads(event.assoc.ae).run(lambda: func(event, *args))
    if inspect.isawaitable(result):
        result = await result
    return result


def _code(status: Any) -> tuple[int, dict[str, Any]]:
    """A yielded status (an int or a status Dataset): its code and response fields."""
    if not isinstance(status, Dataset):
        return int(status), {}
    fields: dict[str, Any] = {}
    if "ErrorComment" in status:
        fields["ErrorComment"] = str(status.ErrorComment)
    if "ErrorID" in status:
        fields["ErrorID"] = int(status.ErrorID)
    if "OffendingElement" in status:
        value = status.OffendingElement
        fields["OffendingElement"] = (
            (int(value),) if isinstance(value, int) else tuple(int(v) for v in value))
    return int(status.Status), fields


class _Failed(Exception):
    """The handler broke its contract: answer ``status``."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


class _Driver:
    """Serves one C-FIND/GET/MOVE request from its handler's results (module doc)."""

    def __init__(self, serving: Serving, assoc: Any, received: ReceivedMessage,
                 event: Event, running: Running) -> None:
        self.serving = serving
        self.assoc = assoc
        self.received = received
        self.request: Any = received.message
        self.event = event
        self.running = running
        self.context = serving.contexts[received.context_id]
        self.answered = False
        # sub-operations: remaining, completed, failed, warning; failed instance UIDs
        self.counts = [0, 0, 0, 0]
        self.failed_uids: list[str] = []

    async def run(self, handler: BoundHandler) -> None:
        request = self.request
        name = self.event.event.name
        source: _Source | None = None
        try:
            try:
                source = _Source(await _results(handler, self.event), self.assoc)
                if type(request) is CFindRQ:
                    await self._find(source)
                else:
                    await self._retrieve(source)
            except _Failed as exc:
                log.error("%s handler: %s: answering 0x%04X", name, exc, exc.status)
                self._final(exc.status)
            except AiodimseError as exc:  # the association ended under us
                log.warning("%s ended early: %s", name, exc)
            except Exception as exc:
                status = {CFindRQ: 0xC311, CGetRQ: 0xC411}.get(type(request), 0xC511)
                log.error("%s handler raised %s: %s: answering 0x%04X", name,
                          type(exc).__name__, exc, status)
                self._final(status)
        finally:
            if source is not None:
                await source.close()
            table_of(self.assoc).pop(request.MessageID, None)
            if not self.answered:
                self.answered = True
                self.serving.dropped(self.assoc, self.received)

    # -- sending ----------------------------------------------------------------------

    def _response(self, status: int, fields: dict[str, Any], suboperations: bool,
                  final: bool) -> Any:
        remaining, completed, failed, warning = self.counts
        counts = (remaining, completed, failed, warning) if suboperations else None
        rsp = make_response(self.request, status, suboperations=counts, **fields)
        if final and suboperations and status != _CANCEL:
            # C.4.2.1.6 / C.4.3.1.5: no remaining count in a final (non-cancel) response
            rsp = dataclasses.replace(rsp, NumberOfRemainingSuboperations=None)
        return rsp

    def _encode(self, ds: Dataset | None) -> bytes | None:
        return None if ds is None else encode_dataset(ds, self.context.transfer_syntax)

    async def _pending(self, status: int, fields: dict[str, Any], identifier: Dataset | None
                       ) -> None:
        """Send a pending response, then wait while the transport is full."""
        assoc = self.assoc
        rsp = self._response(status, fields, type(self.request) is not CFindRQ, False)
        assoc.send_pdus(self.serving.session.encode(self.received.context_id, rsp,
                                                    self._encode(identifier)))
        proto = assoc.proto
        if proto is not None and proto.write_paused:
            await proto.drain()

    def _final(self, status: int, fields: dict[str, Any] | None = None,
               identifier: Dataset | None = None) -> None:
        """Send the final response (once); the request is answered."""
        if self.answered:
            return
        self.answered = True
        assoc, received = self.assoc, self.received
        rsp = self._response(status, fields or {}, type(self.request) is not CFindRQ, True)
        try:
            assoc.send_pdus(self.serving.session.respond(received, rsp,
                                                         self._encode(identifier)))
            if assoc.observer is not None:
                assoc.observer.request_answered(self.request.MessageID,
                                                self.request.command_field,
                                                received.context_id, status)
        except AiodimseError as exc:
            log.warning("could not answer a request: %s", exc)
        assoc.after_request()

    # -- C-FIND -----------------------------------------------------------------------

    async def _find(self, source: _Source) -> None:
        running = self.running
        while True:
            result = await source.next(running)
            if result is None or running.cancelled:
                self._final(_CANCEL)
                return
            if result is _END:
                self._final(0x0000)
                return
            try:
                status, identifier = result
                code, fields = _code(status)
            except (TypeError, ValueError) as exc:
                raise _Failed(0xC311, f"not a (status, identifier) pair: {exc}") from exc
            if code not in _PENDING:
                self._final(code, fields)
                return
            if identifier is not None and not isinstance(identifier, Dataset):
                raise _Failed(0xC311, "a pending identifier must be a Dataset")
            await self._pending(code, fields, identifier)

    # -- C-GET and C-MOVE -------------------------------------------------------------

    async def _retrieve(self, source: _Source) -> None:
        running = self.running
        move = type(self.request) is CMoveRQ
        destination: Any = None
        if move:
            destination = await source.next(running)
            if destination is None or destination is _END:
                self._final(_CANCEL if destination is None else 0xC514)
                return
            try:
                addr, port = destination[0], destination[1]
                kwargs = dict(destination[2]) if len(destination) > 2 and destination[2] else {}
            except (TypeError, IndexError, ValueError) as exc:
                raise _Failed(0xC515, f"not a destination (addr, port[, kwargs]): {exc}"
                              ) from exc
            if addr is None or port is None:
                log.error("unknown move destination %r: answering 0xA801",
                          self.request.MoveDestination)
                self._final(0xA801)
                return
        count = await source.next(running)
        if count is None:
            self._final(_CANCEL)
            return
        if type(count) is tuple and count and isinstance(count[0], Dataset):
            code, fields = _code(count[0])  # a status instead of the count: refused
            self._final(code, fields)
            return
        try:
            total = int(count)
        except (TypeError, ValueError) as exc:
            raise _Failed(0xC513 if move else 0xC413,
                          f"the first result must be the number of sub-operations: {exc}"
                          ) from exc
        if total < 1:
            self._final(0x0000)
            return
        if total > 0xFFFF:
            raise _Failed(0xC516 if move else 0xC416, "more than 65535 sub-operations")
        self.counts[0] = total
        if not move:
            await self._suboperations(source, self.assoc)
            return
        try:
            sub = await self.assoc.ae.associate(addr, int(port),
                                                ae_title=self.request.MoveDestination,
                                                **kwargs)
        except (AiodimseError, OSError, ValueError, TypeError) as exc:
            log.error("cannot associate with move destination %r at %s:%s: %s",
                      self.request.MoveDestination, addr, port, exc)
            self._final(0xA801)
            return
        try:
            await self._suboperations(source, sub)
        finally:
            with contextlib.suppress(AiodimseError):
                await sub.release()

    async def _suboperations(self, source: _Source, target: Any) -> None:
        """Store each pending data set through ``target``; then the final response."""
        running, counts = self.running, self.counts
        move = type(self.request) is CMoveRQ
        originator = ((self.assoc.requestor.ae_title, self.request.MessageID) if move
                      else None)
        while counts[0] > 0:
            result = await source.next(running)
            if result is None or running.cancelled:
                break
            if result is _END:
                break
            try:
                status, dataset = result
                code, fields = _code(status)
            except (TypeError, ValueError) as exc:
                raise _Failed(0xC511 if move else 0xC411,
                              f"not a (status, dataset) pair: {exc}") from exc
            if code not in _PENDING:  # the handler ends it (0xFE00, a failure...)
                self._final(code, fields, self._failed_list())
                return
            counts[0] -= 1
            outcome = await store_instance(target, dataset, self.request.Priority,
                                           originator)
            if not self.assoc.is_alive:  # the peer went away: nobody to answer
                return
            if outcome == 0x0000:
                counts[1] += 1
            elif outcome is not None and (outcome == 0x0001 or 0xB000 <= outcome <= 0xBFFF):
                counts[3] += 1
            else:
                counts[2] += 1
                uid = getattr(dataset, "SOPInstanceUID", None)
                if uid:
                    self.failed_uids.append(str(uid))
            if counts[0] > 0 and not running.cancelled:
                await self._pending(0xFF00, {}, None)
        if running.cancelled:
            self._final(_CANCEL, None, self._failed_list())
            return
        counts[0] = 0
        _remaining, completed, failed, warning = counts
        if not failed and not warning:
            self._final(0x0000)
        elif not completed and not warning:
            self._final(0xA702, None, self._failed_list())
        else:
            self._final(0xB000, None, self._failed_list())

    def _failed_list(self) -> Dataset | None:
        if not self.failed_uids:
            return None
        ds = Dataset()
        ds.FailedSOPInstanceUIDList = self.failed_uids
        return ds


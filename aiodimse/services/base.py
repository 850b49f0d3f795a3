"""A service as a unit: what it declares, and how several are composed on one server.

A :class:`Service` declares its SOP classes (with our role and transfer syntaxes for
each) and its handlers, bound per event *and* SOP class, so that two services can
both answer N-CREATE, each for its own class. :class:`ServiceSet` composes services:
a second handler for the same event and SOP class raises
:class:`~aiodimse.handlers.HandlerConflictError` when the set is built, not when a
request arrives. docs/internals.md, "How to add a service", shows one end to end.
"""

from __future__ import annotations

import abc
import asyncio
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..ae import AE
from ..handlers import Binding, HandlerConflictError, Handlers, HandlerSpec
from ..presentation import check_uid
from ..server import Server

__all__ = ["SOPClass", "Service", "ServiceSet"]


@dataclass(frozen=True, slots=True)
class SOPClass:
    """One SOP class a service handles, and how its presentation contexts are accepted.

    ``scp``: we perform the service (peers connect as SCU, the default roles).
    ``scu``: peers may connect as its SCP (e.g. to send us N-EVENT-REPORTs), so a
    role selection proposing that is accepted. ``transfer_syntaxes``: those we
    accept (empty: the AE's defaults).
    """

    uid: str
    scp: bool = True
    scu: bool = False
    transfer_syntaxes: tuple[str, ...] = ()


class Service(abc.ABC):
    """A DICOM service: SOP classes, handlers per SOP class, and a life of its own.

    Subclasses set ``name`` (``aiodimse serve``'s configuration and logs use it) and
    ``sop_classes`` (class attributes, or set in ``__init__``), and return their
    bindings from ``handlers()``: every intervention handler names one of the
    declared SOP classes. ``start`` runs once the server listens, ``stop`` when it
    stops (within ``grace`` seconds); both do nothing unless overridden.
    """

    name: str = ""
    sop_classes: tuple[SOPClass, ...] = ()

    @abc.abstractmethod
    def handlers(self) -> list[Binding]:
        """The handlers, each as ``Binding(event, handler, sop_class_uid)``."""

    async def start(self) -> None:  # noqa: B027 - optional: most services have no task
        """Begin background work (the server is listening)."""

    async def stop(self, grace: float = 5.0) -> None:  # noqa: B027 - optional, as start
        """End background work within ``grace`` seconds."""


class ServiceSet:
    """Services composed for one server: their contexts, routed handlers, start and stop.

    Adding a service whose handlers clash with those already added (same event and
    SOP class) raises :class:`HandlerConflictError` and leaves the set unchanged.
    """

    def __init__(self, services: Iterable[Service] = ()) -> None:
        self.services: list[Service] = []
        self._bindings: list[Binding] = []
        self._owners: dict[tuple[str, str | None], str] = {}  # (event, SOP class) -> service
        self._handlers = Handlers()
        self._started: list[Service] = []
        for service in services:
            self.add(service)

    def add(self, service: Service) -> None:
        """Add ``service``; its handlers are checked against those already added."""
        if any(s is service for s in self.services):
            raise ValueError(f"service {service.name or service!r} was added already")
        declared = {check_uid(c.uid) for c in service.sop_classes}
        staged = self._handlers.merged(None)  # a copy: a failed add leaves no trace
        owners = dict(self._owners)
        bindings = list(service.handlers())
        label = service.name or type(service).__name__
        for b in bindings:
            if not isinstance(b, Binding):
                raise TypeError(f"{label}: handlers() returns Binding objects, not {b!r}")
            if b.event.is_intervention and b.abstract_syntax not in declared:
                raise ValueError(
                    f"{label}: {b.event.name} is bound for "
                    f"{b.abstract_syntax or 'every SOP class'}, not one the service "
                    f"declares ({', '.join(sorted(declared)) or 'none'})")
            key = (b.event.name, b.abstract_syntax)
            try:
                staged.bind(b.event, b.handler, b.args, abstract_syntax=b.abstract_syntax)
            except HandlerConflictError as exc:
                raise HandlerConflictError(
                    b.event, b.abstract_syntax,
                    f"services {owners[key]!r} and {label!r} both handle it") from exc
            if b.event.is_intervention:
                owners[key] = label
        self._handlers, self._owners = staged, owners
        self._bindings.extend(bindings)
        self.services.append(service)

    def bindings(self) -> list[Binding]:
        """Every service's bindings, for ``evt_handlers``."""
        return list(self._bindings)

    def sop_classes(self) -> dict[str, SOPClass]:
        """The SOP classes declared, one per UID (roles and transfer syntaxes merged)."""
        merged: dict[str, SOPClass] = {}
        for service in self.services:
            for c in service.sop_classes:
                uid = check_uid(c.uid)
                old = merged.get(uid)
                if old is None:
                    merged[uid] = SOPClass(uid, c.scp, c.scu, tuple(c.transfer_syntaxes))
                elif old.transfer_syntaxes and c.transfer_syntaxes:
                    syntaxes = tuple(dict.fromkeys((*old.transfer_syntaxes,
                                                    *c.transfer_syntaxes)))
                    merged[uid] = SOPClass(uid, old.scp or c.scp, old.scu or c.scu, syntaxes)
                else:  # one of them takes the defaults: all of them are accepted
                    merged[uid] = SOPClass(uid, old.scp or c.scp, old.scu or c.scu, ())
        return merged

    def add_contexts(self, ae: AE) -> None:
        """Accept the declared SOP classes on ``ae``'s servers (roles as declared).

        A class no service performs (``scp`` False) is accepted only through a role
        selection item naming the peer its SCP, as C-GET's storage classes are.
        """
        have = {c.abstract_syntax: c for c in ae.supported_contexts}
        for uid, c in self.sop_classes().items():
            old = have.get(uid)
            ae.add_supported_context(
                uid, list(c.transfer_syntaxes) or None,
                scu_role=c.scp or (old is not None and old.scu_role),
                scp_role=c.scu or (old is not None and old.scp_role),
                default_role=c.scp or (old is not None and old.default_role),
            )

    async def start_server(
        self,
        ae: AE,
        address: tuple[str, int],
        evt_handlers: Sequence[HandlerSpec] = (),
        ssl_context: ssl.SSLContext | None = None,
        ae_title: str | None = None,
        *,
        reuse_port: bool = False,
        backlog: int = 1024,
    ) -> Server:
        """Add the contexts to ``ae``, listen with every handler bound, start the services.

        ``evt_handlers`` are bound beside the services' (a clash raises before
        anything listens). Stop with :meth:`shutdown`.
        """
        specs = [*self._bindings, *evt_handlers]
        Handlers(specs)  # any clash raises here, before the AE changes
        self.add_contexts(ae)
        server = await ae.start_server(address, evt_handlers=specs, ssl_context=ssl_context,
                                       ae_title=ae_title, reuse_port=reuse_port,
                                       backlog=backlog)
        try:
            await self.start()
        except BaseException:
            server.close()
            await server.wait_closed()
            raise
        return server

    async def start(self) -> None:
        """Start every service in order; on a failure, stop those started and raise."""
        for service in self.services:
            try:
                await service.start()
            except BaseException:
                await self.stop(grace=0)
                raise
            self._started.append(service)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop the started services, together, within ``grace`` seconds."""
        started, self._started = self._started, []
        results = await asyncio.gather(*(s.stop(grace) for s in reversed(started)),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def shutdown(self, server: Server, grace: float = 5.0) -> None:
        """Stop ``server`` (``Server.shutdown``) and the services, within ``grace``."""
        await asyncio.gather(server.shutdown(grace), self.stop(grace))

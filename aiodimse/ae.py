"""The Application Entity: configuration, ``associate()`` and ``start_server()``.

Names and defaults follow pynetdicom's ``AE`` so that ported code reads the same;
the differences are listed in docs/porting.md.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any

from .association import Association
from .handlers import Handlers, HandlerSpec
from .observe import Observer
from .presentation import (
    RequestedContext,
    SupportedContext,
    check_uid,
    syntaxes,
)
from .requestor import open_association
from .server import Server
from .uids import IMPLEMENTATION_CLASS_UID
from .wire.items import (
    AsyncOpsWindow,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityRQ,
)

__all__ = [
    "AE",
    "AssociateRequest",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "ae_title_problem",
]

IMPLEMENTATION_VERSION_NAME = "AIODIMSE_010"

ExtNegItem = (
    RoleSelection
    | SOPClassExtendedNegotiation
    | SOPClassCommonExtendedNegotiation
    | UserIdentityRQ
    | AsyncOpsWindow
)

# (assoc) -> None to accept, or a (result, source, reason) triple to reject.
_Verdict = tuple[int, int, int] | None
AccessHook = Callable[[Association], _Verdict | Awaitable[_Verdict]]


def ae_title_problem(title: str) -> str | None:
    """Why ``title`` is not an AE title we may send, or None (PS3.5 6.2, VR AE).

    The default character repertoire (0x20-0x7E) without backslash, at most 16
    characters, leading and trailing spaces not significant, not spaces alone.
    """
    stripped = title.strip(" ")
    if not stripped:
        return "an AE title may not be empty or spaces only"
    if len(stripped) > 16:
        return f"an AE title has at most 16 characters, {stripped!r} has {len(stripped)}"
    bad = [c for c in stripped if not " " <= c <= "~" or c == "\\"]
    if bad:
        return (f"an AE title may hold printable ASCII except backslash; "
                f"{stripped!r} has {bad[0]!r}")
    return None


def _check_ae_title(title: str) -> str:
    title = str(title)
    problem = ae_title_problem(title)
    if problem is not None:
        raise ValueError(problem)
    return title.strip(" ")


class AE:
    """A DICOM Application Entity, as pynetdicom's ``AE`` but asynchronous."""

    def __init__(self, ae_title: str = "AIODIMSE") -> None:
        self._ae_title = _check_ae_title(ae_title)
        self._requested: list[RequestedContext] = []
        self._supported: dict[str, SupportedContext] = {}
        self.maximum_pdu_size = 16382
        self.maximum_associations = 16384
        # Slots a server keeps from one peer (None: no limit of its own), and for
        # connections that have not sent their A-ASSOCIATE-RQ yet (None: as many as
        # maximum_associations). See docs/internals.md, "Slots and deadlines".
        self.maximum_associations_per_address: int | None = None
        self.maximum_associations_per_ae: int | None = None
        self.maximum_pending_connections: int | None = None
        self.maximum_pending_per_address: int | None = None
        self.acse_timeout: float = 30.0
        self.dimse_timeout: float | None = 30.0
        self.network_timeout: float | None = 60.0
        self.connection_timeout: float | None = 30.0
        self.artim_timeout: float = 30.0
        # A server's bound on receiving one message, first byte to last fragment
        # (None: off); association set-up as a whole is bounded by acse_timeout.
        self.message_timeout: float | None = 60.0
        self.require_called_aet = False
        self.require_calling_aet: list[str] = []
        self.access_hook: AccessHook | None = None
        # What servers started from this AE report to (aiodimse.observe); None: nothing
        self.observer: Observer | None = None
        self.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        self.implementation_version_name: str | None = IMPLEMENTATION_VERSION_NAME
        # Asynchronous operations window (PS3.7 D.3.3.3). As requestor: proposed only
        # when set. As acceptor: the most we grant; (1, 1) means no async operations.
        self.async_ops_window: tuple[int, int] | None = None
        self.maximum_async_ops: tuple[int, int] = (1, 1)
        self.maximum_command_size = 64 * 1024
        self.maximum_dataset_size = 256 * 1024 * 1024
        # inflated bytes per deflated byte a Deflated Explicit VR LE data set may reach
        # (past 1 MiB; None: no limit); past it, or past maximum_dataset_size: 0x0213
        self.maximum_inflate_ratio: int | None = 200
        self.max_pdata_cap = 1 << 24
        # Plain (sync) handlers run on the AE's own threads, at most this many at once
        # (handlers.HandlerThreads); a handler still running after handler_timeout
        # seconds is answered 0x0110 and cancelled (None: no limit). docs/handlers.md
        self.handler_threads = 32
        self.handler_timeout: float | None = 60.0
        # Read back pressure: past these bytes of queued requests and partial messages
        # an association stops being read until it drains to half (per association,
        # and summed over a server's associations).
        self.maximum_association_buffered = 64 * 1024 * 1024
        self.maximum_server_buffered = 1024 * 1024 * 1024
        # C-STORE as SCP (store_scp.py): received instances written to temporary Part 10
        # files in store_directory (None: the system's) as they arrive, for handlers
        # to take as event.dataset_path, instead of held in memory; an instance past
        # maximum_stored_size bytes is refused 0xA700 (maximum_dataset_size is the
        # in-memory limit).
        self.store_to_file = False
        self.store_directory: str | None = None
        self.maximum_stored_size = 64 << 30

    # -- configuration --------------------------------------------------------------

    @property
    def ae_title(self) -> str:
        return self._ae_title

    @ae_title.setter
    def ae_title(self, value: str) -> None:
        self._ae_title = _check_ae_title(value)

    @property
    def requested_contexts(self) -> list[RequestedContext]:
        return list(self._requested)

    @requested_contexts.setter
    def requested_contexts(self, contexts: Iterable[RequestedContext]) -> None:
        self._requested = []
        for ctx in contexts:
            self.add_requested_context(ctx.abstract_syntax, ctx.transfer_syntaxes)

    @property
    def supported_contexts(self) -> list[SupportedContext]:
        return list(self._supported.values())

    @supported_contexts.setter
    def supported_contexts(self, contexts: Iterable[SupportedContext]) -> None:
        self._supported = {}
        for ctx in contexts:
            self.add_supported_context(
                ctx.abstract_syntax, ctx.transfer_syntaxes, ctx.scu_role, ctx.scp_role,
                default_role=ctx.default_role,
            )

    def add_requested_context(
        self, abstract_syntax: str, transfer_syntax: str | Sequence[str] | None = None
    ) -> None:
        """Propose this abstract syntax when requesting (at most 128 contexts)."""
        if len(self._requested) >= 128:
            raise ValueError(
                "at most 128 presentation contexts can be requested (PS3.8 9.3.2.2): "
                "propose only the SOP classes you will send")
        uid = check_uid(abstract_syntax)
        self._requested.append(RequestedContext(uid, syntaxes(transfer_syntax)))

    def remove_requested_context(self, abstract_syntax: str) -> None:
        uid = check_uid(abstract_syntax)
        self._requested = [c for c in self._requested if c.abstract_syntax != uid]

    def add_supported_context(
        self,
        abstract_syntax: str,
        transfer_syntax: str | Sequence[str] | None = None,
        scu_role: bool | None = None,
        scp_role: bool | None = None,
        *,
        default_role: bool | None = None,
    ) -> None:
        """Accept this abstract syntax; extends the transfer syntaxes if already there.

        ``scu_role``/``scp_role`` answer a requestor's role selection proposal for
        this abstract syntax (True accepts the proposed role). ``default_role=False``
        (not in pynetdicom, which always accepts it) rejects a proposal without a
        role selection item, so a class we only invoke is not offered to be served.
        """
        uid = check_uid(abstract_syntax)
        new = syntaxes(transfer_syntax)
        old = self._supported.get(uid)
        # None keeps the default answer to role selection: the requestor may be SCU,
        # not SCP (pynetdicom's default too).
        default_scu, default_scp, default_default = (
            (True, False, True) if old is None
            else (old.scu_role, old.scp_role, old.default_role))
        if old is not None:
            new = tuple(dict.fromkeys((*old.transfer_syntaxes, *new)))
        self._supported[uid] = SupportedContext(
            abstract_syntax=uid,
            transfer_syntaxes=new,
            scu_role=default_scu if scu_role is None else scu_role,
            scp_role=default_scp if scp_role is None else scp_role,
            default_role=default_default if default_role is None else default_role,
        )

    def remove_supported_context(self, abstract_syntax: str) -> None:
        self._supported.pop(check_uid(abstract_syntax), None)

    # -- requestor --------------------------------------------------------------------

    def associate(  # noqa: PLR0917 - pynetdicom's positional signature
        self,
        addr: str,
        port: int,
        contexts: Sequence[RequestedContext] | None = None,
        ae_title: str = "ANY-SCP",
        max_pdu: int | None = None,
        ext_neg: Sequence[ExtNegItem] | None = None,
        evt_handlers: Iterable[HandlerSpec] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        *,
        bind_address: tuple[str, int] | None = None,
        server_hostname: str | None = None,
    ) -> AssociateRequest:
        """Request an association: await the result, or use it in ``async with``."""
        coro = open_association(
            self,
            addr,
            port,
            contexts=list(contexts) if contexts is not None else self.requested_contexts,
            called_ae_title=_check_ae_title(ae_title),
            max_pdu=self.maximum_pdu_size if max_pdu is None else max_pdu,
            ext_neg=list(ext_neg or ()),
            handlers=Handlers(evt_handlers),
            ssl_context=ssl_context,
            bind_address=bind_address,
            server_hostname=server_hostname,
        )
        return AssociateRequest(coro)

    # -- acceptor ---------------------------------------------------------------------

    async def start_server(
        self,
        address: tuple[str, int],
        evt_handlers: Iterable[HandlerSpec] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ae_title: str | None = None,
        contexts: Sequence[SupportedContext] | None = None,
        *,
        reuse_port: bool = False,
        backlog: int = 1024,
    ) -> Server:
        """Listen on ``address`` and serve associations until closed."""
        server = Server(
            self,
            handlers=Handlers(evt_handlers),
            ae_title=_check_ae_title(ae_title) if ae_title is not None else self.ae_title,
            contexts=(
                {c.abstract_syntax: c for c in contexts}
                if contexts is not None
                else dict(self._supported)
            ),
            ssl_context=ssl_context,
        )
        await server.listen(address, reuse_port=reuse_port, backlog=backlog)
        return server


class AssociateRequest:
    """What ``AE.associate`` returns: awaitable, and an async context manager.

    ``async with ae.associate(...) as assoc`` releases on a normal exit and aborts
    when the block raises.
    """

    __slots__ = ("_assoc", "_coro", "_task")

    def __init__(self, coro: Any) -> None:
        self._coro = coro
        self._task: asyncio.Task[Association] | None = None
        self._assoc: Association | None = None

    def _start(self) -> asyncio.Task[Association]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._coro)
        return self._task

    def __await__(self) -> Generator[Any, None, Association]:
        return self._start().__await__()

    async def __aenter__(self) -> Association:
        self._assoc = await self._start()
        return self._assoc

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assoc = self._assoc
        if assoc is None:
            return
        if exc_type is None:
            await assoc.release()
        else:
            assoc.abort()
            await assoc.wait_closed()

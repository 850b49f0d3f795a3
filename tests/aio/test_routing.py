"""Handler routing by event and abstract syntax, with the event-wide binding as fallback."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from aiodimse import evt
from aiodimse.handlers import Binding, HandlerConflictError, Handlers

from ._helpers import FILM_SESSION, MPPS, STGCMT, STGCMT_INSTANCE, bounded, make_scu_ae, serving


async def _ok(event: Any) -> tuple[int, None]:
    return 0x0000, None


async def _warn(event: Any) -> tuple[int, None]:
    return 0x0001, None


async def _other(event: Any) -> tuple[int, None]:
    return 0xB000, None


def _func(handlers: Handlers, event: evt.EventType, syntax: str) -> Any:
    found = handlers.lookup(event, syntax)
    return None if found is None else found.func


def test_lookup_prefers_the_abstract_syntax_then_falls_back_to_the_event() -> None:
    handlers = Handlers([(evt.EVT_N_CREATE, _ok),
                         Binding(evt.EVT_N_CREATE, _warn, MPPS)])
    assert _func(handlers, evt.EVT_N_CREATE, MPPS) is _warn
    assert _func(handlers, evt.EVT_N_CREATE, FILM_SESSION) is _ok
    assert _func(handlers, evt.EVT_N_SET, MPPS) is None
    only_routed = Handlers([Binding(evt.EVT_N_CREATE, _warn, MPPS)])
    assert _func(only_routed, evt.EVT_N_CREATE, FILM_SESSION) is None
    assert only_routed  # not empty although no event-wide binding


def test_a_second_handler_for_the_same_key_raises_naming_event_and_class() -> None:
    handlers = Handlers([Binding(evt.EVT_N_CREATE, _ok, MPPS)])
    with pytest.raises(HandlerConflictError, match=f"EVT_N_CREATE .*SOP class {MPPS}"):
        handlers.bind(evt.EVT_N_CREATE, _warn, abstract_syntax=MPPS)
    assert _func(handlers, evt.EVT_N_CREATE, MPPS) is _ok  # unchanged
    handlers.bind(evt.EVT_N_CREATE, _warn, abstract_syntax=FILM_SESSION)  # another key
    handlers.bind(evt.EVT_N_CREATE, _other)  # the event-wide key is another key too
    with pytest.raises(HandlerConflictError, match="every abstract syntax"):
        handlers.bind(evt.EVT_N_CREATE, _ok)
    with pytest.raises(HandlerConflictError):  # in one evt_handlers list
        Handlers([(evt.EVT_N_ACTION, _ok), (evt.EVT_N_ACTION, _warn)])
    # The same handler again only changes its arguments; unbind frees the key.
    handlers.bind(evt.EVT_N_CREATE, _ok, ["x"], abstract_syntax=MPPS)
    found = handlers.lookup(evt.EVT_N_CREATE, MPPS)
    assert found is not None and found.args == ("x",)
    handlers.unbind(evt.EVT_N_CREATE, _ok, abstract_syntax=MPPS)
    assert _func(handlers, evt.EVT_N_CREATE, MPPS) is _other  # the fallback now
    handlers.bind(evt.EVT_N_CREATE, _warn, abstract_syntax=MPPS)
    assert _func(handlers, evt.EVT_N_CREATE, MPPS) is _warn


def test_an_overlay_replaces_and_merging_never_raises() -> None:
    server = Handlers([(evt.EVT_N_ACTION, _ok), Binding(evt.EVT_N_ACTION, _ok, STGCMT)])
    assoc = Handlers([(evt.EVT_N_ACTION, _warn), Binding(evt.EVT_N_ACTION, _other, STGCMT)])
    merged = server.merged(assoc)
    assert _func(merged, evt.EVT_N_ACTION, STGCMT) is _other
    assert _func(merged, evt.EVT_N_ACTION, MPPS) is _warn
    assert _func(server, evt.EVT_N_ACTION, STGCMT) is _ok  # the original is untouched
    merged.bind(evt.EVT_N_ACTION, _ok, replace=True)
    assert _func(merged, evt.EVT_N_ACTION, MPPS) is _ok


def test_only_requests_on_a_context_route_by_abstract_syntax() -> None:
    handlers = Handlers()
    for event in (evt.EVT_ESTABLISHED, evt.EVT_USER_ID):
        with pytest.raises(ValueError, match="cannot be bound per abstract syntax"):
            handlers.bind(event, _ok, abstract_syntax=MPPS)


def test_notifications_still_take_several_handlers() -> None:
    handlers = Handlers([(evt.EVT_RELEASED, _ok), (evt.EVT_RELEASED, _warn)])
    assert [b.func for b in handlers.get(evt.EVT_RELEASED)] == [_ok, _warn]
    assert handlers.notifies


async def test_the_event_wide_binding_routes_every_sop_class() -> None:
    """pynetdicom's ``(event, handler)`` and ``(event, handler, args)`` answer on every
    context, as before routing by SOP class existed."""
    seen: list[tuple[str, str, str]] = []

    async def on_n_create(event: Any, tag: str) -> tuple[int, Dataset]:
        seen.append((tag, event.context.abstract_syntax, str(event.request.AffectedSOPClassUID)))
        reply = Dataset()
        reply.AffectedSOPInstanceUID = "1.2.3.4"
        return 0x0000, reply

    async with serving([(evt.EVT_N_CREATE, on_n_create, ["wide"]),
                        (evt.EVT_N_ACTION, _warn)]) as server:
        scu = make_scu_ae()
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            for uid in (MPPS, FILM_SESSION):
                status, _ = await bounded(assoc.send_n_create(Dataset(), uid))
                assert status.Status == 0x0000
            status, _ = await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
            assert status.Status == 0x0001
    assert seen == [("wide", MPPS, MPPS), ("wide", FILM_SESSION, FILM_SESSION)]


async def test_requests_route_by_their_contexts_abstract_syntax() -> None:
    accepted: list[Any] = []

    async def on_established(event: Any) -> None:
        accepted.append(event.assoc)

    async with serving([(evt.EVT_N_ACTION, _ok), Binding(evt.EVT_N_ACTION, _warn, STGCMT),
                        (evt.EVT_ESTABLISHED, on_established)]) as server:
        scu = make_scu_ae()
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            status, _ = await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
            assert status.Status == 0x0001  # the STGCMT context's own handler
            status, _ = await bounded(assoc.send_n_action(None, 1, MPPS, "1.2.3"))
            assert status.Status == 0x0000  # no handler for MPPS: the event-wide one
            server.unbind(evt.EVT_N_ACTION, _ok)
            status, _ = await bounded(assoc.send_n_action(None, 1, MPPS, "1.2.3"))
            assert status.Status == 0x0110  # nothing bound for it now
            with pytest.raises(HandlerConflictError):
                server.bind(evt.EVT_N_ACTION, _other, abstract_syntax=STGCMT)
            # The association's own binding is an overlay: it replaces, for it alone.
            accepted[0].bind(evt.EVT_N_ACTION, _other, abstract_syntax=STGCMT)
            status, _ = await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
            assert status.Status == 0xB000
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            status, _ = await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
            assert status.Status == 0x0001  # the server's binding, untouched

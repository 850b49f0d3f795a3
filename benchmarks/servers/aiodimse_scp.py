"""aiodimse SCP contender, written against its public API.

Storage Commitment + Verification supported, an ``async def`` EVT_N_ACTION handler
returning ``(0x0000, None)`` (``--read-all``: it reads every referenced instance of
``event.action_information``). If aiodimse does not offer that API yet, prints
``NA <reason>`` so the runner reports the contender as n/a. ``--replies MODE`` (row 8)
adds MPPS and the N-ACTION / N-GET / N-CREATE handlers of benchmarks/replies.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import Any

from benchmarks import replies
from benchmarks.procs import run_loop
from benchmarks.servers._common import announce, not_available, parse_args, wait_for_stop

STGCMT = "1.2.840.10008.1.20.1"
VERIFICATION = "1.2.840.10008.1.1"


async def on_n_action(event: Any) -> tuple[int, None]:
    return 0x0000, None


async def on_n_action_read(event: Any) -> tuple[int, None]:
    ds = event.action_information
    n = 0
    for item in ds.ReferencedSOPSequence:
        if item.ReferencedSOPClassUID and item.ReferencedSOPInstanceUID:
            n += 1
    return (0x0000 if n else 0x0110), None


async def on_c_echo(event: Any) -> int:
    return 0x0000


def _async(func: replies.Handler) -> Callable[[Any], Coroutine[Any, Any, tuple[int, Any]]]:
    """A row 8 handler as an ``async def`` one (as users write them for aiodimse)."""

    async def handler(event: Any) -> tuple[int, Any]:
        return func(event)

    return handler


def _configure(ae: Any, max_associations: int, window: int) -> list[str]:
    """Settings the benchmark needs, applied where the AE offers them."""
    notes = []
    settings: tuple[tuple[str, object], ...] = (
        ("maximum_associations", max_associations),
        ("maximum_pdu_size", 16384),
    )
    for name, value in settings:
        if hasattr(ae, name):
            setattr(ae, name, value)
        else:
            notes.append(f"no AE.{name}")
    # Asynchronous operations window the acceptor grants (names differ between stacks;
    # aiodimse's AE calls it maximum_async_ops).
    window_settings: tuple[tuple[str, object], ...] = (
        ("maximum_async_ops", (window, window)),
        ("maximum_operations_performed", window),
        ("max_ops_performed", window),
    )
    for name, value in window_settings:
        if hasattr(ae, name):
            setattr(ae, name, value)
            break
    else:
        notes.append("no async ops window setting found")
    return notes


async def serve(args: argparse.Namespace) -> None:
    try:
        from aiodimse import AE, evt
    except ImportError as exc:
        not_available(f"aiodimse has no AE/evt yet ({exc})")
        return
    ae = AE(ae_title="BENCH_SCP")
    ae.add_supported_context(STGCMT)
    ae.add_supported_context(VERIFICATION)
    _configure(ae, args.max_associations, args.window)
    handler = on_n_action_read if args.read_all else on_n_action
    bound: list[tuple[Any, Any]] = [(evt.EVT_N_ACTION, handler), (evt.EVT_C_ECHO, on_c_echo)]
    if args.replies:
        ae.add_supported_context(replies.MPPS_CLASS)
        funcs = replies.handlers(args.replies)
        bound = [(evt.EVT_N_ACTION, _async(funcs["naction"])),
                 (evt.EVT_N_GET, _async(funcs["nget"])),
                 (evt.EVT_N_CREATE, _async(funcs["ncreate"])), (evt.EVT_C_ECHO, on_c_echo)]
    try:
        server = await ae.start_server((args.host, args.port), evt_handlers=bound)
    except Exception as exc:
        not_available(f"AE.start_server failed: {exc!r}")
        return
    port = getattr(server, "port", None)
    if not isinstance(port, int) or port == 0:
        not_available("server has no bound .port")
        return
    announce(port)
    async with server:
        await wait_for_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--read-all", action="store_true")
    parser.add_argument("--max-associations", type=int, default=20000)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--replies", choices=replies.MODES, help="row 8's handlers")
    args = parse_args(__doc__ or "", parser)
    if args.loop == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            not_available("uvloop is not installed")
    run_loop(serve(args), args.loop)


if __name__ == "__main__":
    main()

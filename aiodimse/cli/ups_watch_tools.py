"""``aiodimse ups subscribe|unsubscribe|watch``: UPS subscriptions and their reports.

``subscribe`` and ``unsubscribe`` send one N-ACTION on the UPS Watch class (Action
Type 3, or 4; ``unsubscribe --suspend``: 5, Suspend Global Subscription) for a
workitem (``-i UID``) or the global (``--global``) or filtered global
(``--filtered`` with ``-k KEYWORD=VALUE`` matching keys) instance; the exit status
is the common one (0 success, 1 warning, 2 failure, 3 no answer). ``watch`` listens
for UPS event reports (N-EVENT-REPORT of UPS Event, the SCP role accepted for the
sender) and prints each, one line (``--json``: one JSON object per line), until
SIGINT or SIGTERM (exit 0) or ``--count`` reports (exit 0); 3 if it cannot listen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any

from pydicom.dataset import Dataset

from ..ae import AE
from ..association import Association
from ..events import Event
from ..evt import EVT_N_EVENT_REPORT
from ..services.ups.uids import (
    ACTION_SUBSCRIBE,
    ACTION_SUSPEND_GLOBAL,
    ACTION_UNSUBSCRIBE,
    FILTERED_GLOBAL_SUBSCRIPTION,
    GLOBAL_SUBSCRIPTION,
    UPS_EVENT,
    UPS_PUSH,
    UPS_WATCH,
)
from . import checks
from .common import (
    EXIT_ERROR,
    EXIT_SUCCESS,
    add_connection_args,
    load_dataset,
    make_ae,
    report,
    run_requests,
)

__all__ = ["COMMANDS", "add_ups_commands", "EVENT_NAMES"]

COMMANDS = ("subscribe", "unsubscribe", "watch")

EVENT_NAMES = {1: "UPS State Report", 2: "UPS Cancel Requested", 3: "UPS Progress Report",
               4: "SCP Status Change", 5: "UPS Assigned"}


def add_ups_commands(ups_sub: Any) -> None:
    """``subscribe``, ``unsubscribe`` and ``watch`` under the ``ups`` command
    (ups_tool.add_parsers calls this)."""
    for name, help_text in (("subscribe", "subscribe an AE to UPS event reports"),
                            ("unsubscribe", "unsubscribe an AE from UPS event reports")):
        p: argparse.ArgumentParser = ups_sub.add_parser(name, help=help_text)
        add_connection_args(p, repeat=False)
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("-i", "--instance-uid", help="a workitem's SOP Instance UID")
        which.add_argument("--global", dest="global_", action="store_true",
                           help="the UPS Global Subscription instance (every workitem)")
        which.add_argument("--filtered", action="store_true",
                           help="the Filtered Global Subscription instance (workitems "
                                "matching the -k keys)")
        p.add_argument("-r", "--receiving-ae", type=checks.ae_title,
                       help="the AE to send the reports to (default: -aet)")
        p.add_argument("--json", action="store_true", help="print the reply as JSON")
        if name == "subscribe":
            p.add_argument("--deletion-lock", action="store_true",
                           help="keep the workitems until unsubscribed (default: no lock)")
            p.add_argument("-k", "--key", action="append", default=[],
                           metavar="KW=VALUE", help="a matching key for --filtered "
                           "(repeatable; default none)")
        else:
            p.add_argument("--suspend", action="store_true",
                           help="suspend the global subscription instead: keep the "
                                "workitems subscribed, gain no new ones")
        p.set_defaults(run=_run_action, operation=name)
    p = ups_sub.add_parser("watch", help="receive UPS event reports and print them")
    p.add_argument("-aet", "--ae-title", default="AIODIMSE", type=checks.ae_title,
                   help="our AE title (default %(default)s)")
    p.add_argument("--port", type=checks.listen_port, default=11113,
                   help="port to listen on (default %(default)s)")
    p.add_argument("--host", default="0.0.0.0", help="address (default %(default)s)")
    p.add_argument("--count", type=checks.positive_int,
                   help="stop after this many reports (default: until SIGINT/SIGTERM)")
    p.add_argument("--json", action="store_true", help="one JSON object per report")
    p.set_defaults(run=_run_watch)


def _action_information(args: argparse.Namespace) -> tuple[str, int, Dataset]:
    """(instance UID, Action Type ID, Action Information) for the arguments."""
    keys = getattr(args, "key", [])
    info = load_dataset(None, keys) or Dataset()
    if keys and not args.filtered:
        raise ValueError("-k matching keys go with --filtered")
    info.ReceivingAE = args.receiving_ae or args.calling_aet
    if args.operation == "subscribe":
        info.DeletionLock = "TRUE" if args.deletion_lock else "FALSE"
        action = ACTION_SUBSCRIBE
    elif args.suspend:
        if args.instance_uid:
            raise ValueError("--suspend goes with --global or --filtered")
        action = ACTION_SUSPEND_GLOBAL
    else:
        action = ACTION_UNSUBSCRIBE
    instance = args.instance_uid or (
        FILTERED_GLOBAL_SUBSCRIPTION if args.filtered else GLOBAL_SUBSCRIPTION)
    return instance, action, info


async def _run_action(args: argparse.Namespace) -> int:
    name = f"ups {args.operation}"
    try:
        instance, action, info = _action_information(args)
    except ValueError as exc:
        print(f"aiodimse {name}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    ae = make_ae(args, [UPS_WATCH])

    async def operation(assoc: Association) -> tuple[Dataset, Dataset | None]:
        return await assoc.send_n_action(info, action, UPS_PUSH, instance, UPS_WATCH)

    outcome = await run_requests(args, ae, operation)
    return report(f"UPS-{args.operation.upper()}", outcome, as_json=args.json, repeat=1)


def _line(event: Event, as_json: bool) -> str:
    kind = event.event_type
    instance = str(event.request.AffectedSOPInstanceUID)
    info = event.event_information
    calling = event.assoc.requestor.ae_title
    if as_json:
        return json.dumps({"event_type": kind, "event": EVENT_NAMES.get(kind, "unknown"),
                           "instance": instance, "calling_aet": calling,
                           "information": info.to_json_dict()})
    fields = " ".join(f"{e.keyword}={e.value}" for e in info
                      if e.VR != "SQ" and e.keyword)
    nested = " ".join(f"{e.keyword}[{len(e.value)}]" for e in info if e.VR == "SQ")
    return " ".join(part for part in (f"{EVENT_NAMES.get(kind, f'event {kind}')}",
                                      f"instance={instance}", f"from={calling}",
                                      fields, nested) if part)


async def _run_watch(args: argparse.Namespace) -> int:
    ae = AE(args.ae_title)
    # the sender is the SCP of UPS Event: accept that role when proposed (and the
    # default roles too, for a sender that proposes none)
    ae.add_supported_context(UPS_EVENT, scu_role=True, scp_role=True)
    stop = asyncio.Event()
    seen = [0]

    async def on_report(event: Event) -> tuple[int, None]:
        print(_line(event, args.json), flush=True)
        seen[0] += 1
        if args.count and seen[0] >= args.count:
            stop.set()
        return 0x0000, None

    try:
        server = await ae.start_server((args.host, args.port),
                                       evt_handlers=[(EVT_N_EVENT_REPORT, on_report)])
    except OSError as exc:
        print(f"aiodimse ups watch: cannot listen on {args.host}:{args.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(f"listening for UPS event reports as {args.ae_title} on {args.host}:"
          f"{server.port}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
        await server.shutdown(2.0)
    return EXIT_SUCCESS

"""``aiodimse commit``: a Storage Commitment Push Model SCU, as dcm4che's stgcmtscu.

Sends one N-ACTION (Request Storage Commitment) for the given instances, then waits
for the N-EVENT-REPORT: on the same association, or — with ``--listen-port`` — on
an association the SCP opens to us (we accept the SCP role it proposes; a report
that comes on the request association after we asked to release it cannot be
answered, so it is not taken: the SCP sends it again on a new one). Exit
status: 0 all committed, 1 some instances failed, 2 the request was refused,
3 no association or no report in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from .. import evt
from ..association import Association
from ..errors import AiodimseError
from ..events import Event
from ..logs import get_logger
from ..server import Server
from ..services.storage_commitment import STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
from ..store.index import scan
from . import checks
from .common import (
    EXIT_ERROR,
    EXIT_FAILURE,
    EXIT_SUCCESS,
    EXIT_WARNING,
    add_connection_args,
    client_ssl_context,
    describe_status,
    make_ae,
)

__all__ = ["add_parsers", "run_commit", "FAILURE_REASONS"]

log = get_logger("aiodimse.commit")

SETTLE_TIMEOUT = 2.0  # s: for our answer to go out / the SCP to release, after the report

FAILURE_REASONS = {
    0x0110: "Processing failure",
    0x0112: "No such object instance",
    0x0119: "Class / Instance conflict",
    0x0122: "Referenced SOP Class not supported",
    0x0131: "Duplicate transaction UID",
    0x0213: "Resource limitation",
}


def add_parsers(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "commit", help="request storage commitment and print the report"
    )
    add_connection_args(p, repeat=False)
    p.add_argument("paths", nargs="*", help="DICOM files or directories to commit")
    p.add_argument("-u", "--uid", action="append", default=[], metavar="CLASS:INSTANCE",
                   help="an instance by SOP Class and Instance UID (repeatable; default "
                        "none)")
    p.add_argument("--transaction-uid", help="default: a new UID")
    p.add_argument("--listen-port", type=checks.listen_port,
                   help="receive the report on a new association on this port "
                        "(release the request association at once; default none: wait "
                        "on the request association)")
    p.add_argument("--listen-host", default="0.0.0.0",
                   help="address for --listen-port (default %(default)s)")
    p.add_argument("--wait", type=float, default=60.0,
                   help="seconds to wait for the report (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run_commit)


def _refs(args: argparse.Namespace) -> list[tuple[str, str]]:
    refs = [(cls, inst) for cls, inst, _path in scan(args.paths)]
    for text in args.uid:
        cls, sep, inst = text.partition(":")
        if not sep or not cls or not inst:
            raise ValueError(f"--uid wants CLASS:INSTANCE, got {text!r}")
        refs.append((cls.strip(), inst.strip()))
    return refs


def _request(transaction_uid: str, refs: list[tuple[str, str]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    items = []
    for cls, inst in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = cls
        item.ReferencedSOPInstanceUID = inst
        items.append(item)
    ds.ReferencedSOPSequence = items
    return ds


def _print_report(
    transaction_uid: str, event_type: int, info: Dataset, via: str, as_json: bool
) -> int:
    committed = [
        (str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID))
        for i in info.get("ReferencedSOPSequence", [])
    ]
    failed = [
        (str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID),
         int(i.get("FailureReason", 0x0110)))
        for i in info.get("FailedSOPSequence", [])
    ]
    if as_json:
        print(json.dumps({
            "transaction_uid": transaction_uid,
            "event_type": event_type,
            "received_on": via,
            "committed": [{"class": c, "instance": i} for c, i in committed],
            "failed": [
                {"class": c, "instance": i, "reason": r,
                 "reason_text": FAILURE_REASONS.get(r, "unknown")}
                for c, i, r in failed
            ],
        }, indent=2))
    else:
        print(f"Transaction UID {transaction_uid}: event type {event_type}, "
              f"{len(committed)} committed, {len(failed)} failed (report on the {via})")
        for cls, inst in committed:
            print(f"committed {cls} {inst}")
        for cls, inst, reason in failed:
            print(f"failed    {cls} {inst} 0x{reason:04X} "
                  f"({FAILURE_REASONS.get(reason, 'unknown reason')})")
    return EXIT_WARNING if failed or event_type != 1 else EXIT_SUCCESS


async def _settle(assoc: Association, *, closed: bool = False) -> None:
    """Wait (a little, bounded) until our answer to the report is written, or, for an
    association the SCP opened, until the SCP has released it."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(assoc.wait_closed() if closed else assoc.wait_idle(),
                               SETTLE_TIMEOUT)


async def run_commit(args: argparse.Namespace) -> int:
    try:
        refs = _refs(args)
    except (OSError, ValueError) as exc:
        print(f"aiodimse commit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not refs:
        print("aiodimse commit: no instances given (files, directories or --uid)",
              file=sys.stderr)
        return EXIT_ERROR
    transaction_uid = args.transaction_uid or str(generate_uid())
    loop = asyncio.get_running_loop()
    reported: asyncio.Future[tuple[int, Dataset, str]] = loop.create_future()
    # Associations we have asked to release: a report arriving on one of them cannot
    # be answered (PS3.8 7.2.2: the releaser may send nothing but A-ABORT), so the SCP
    # does not count it as delivered and sends it again on a new association. Taking
    # it would make us print a report the SCP goes on retrying.
    releasing: set[Association] = set()
    carrier: list[Association] = []

    async def on_report(event: Event) -> tuple[int, None]:
        info = event.event_information
        if event.assoc in releasing:
            log.debug("report on the association being released: cannot answer it")
            return 0x0110, None
        if str(info.get("TransactionUID", "")) != transaction_uid or reported.done():
            return 0x0110, None  # not the report we wait for
        via = "new association" if event.assoc.is_acceptor else "same association"
        carrier.append(event.assoc)
        reported.set_result((event.event_type, info, via))
        return 0x0000, None

    ae = make_ae(args, [STORAGE_COMMITMENT])
    handlers = [(evt.EVT_N_EVENT_REPORT, on_report)]
    server: Server | None = None
    ssl_context = client_ssl_context(args)
    try:
        if args.listen_port is not None:
            ae.add_supported_context(STORAGE_COMMITMENT, scp_role=True)
            server = await ae.start_server((args.listen_host, args.listen_port),
                                           evt_handlers=handlers)
        async with ae.associate(
            args.host, args.port, ae_title=args.called_aet, max_pdu=args.max_pdu,
            evt_handlers=handlers, ssl_context=ssl_context,
            server_hostname=None if ssl_context is None or args.tls_no_verify else args.host,
        ) as assoc:
            status, _ = await assoc.send_n_action(
                _request(transaction_uid, refs), 1, STORAGE_COMMITMENT,
                STORAGE_COMMITMENT_INSTANCE,
            )
            if int(status.Status) != 0x0000:
                print(f"aiodimse commit: request refused: {describe_status(status)}",
                      file=sys.stderr)
                return EXIT_FAILURE
            if server is None:  # the report must come on this association
                ended = asyncio.ensure_future(assoc.wait_closed())
                either: set[asyncio.Future[Any]] = {reported, ended}
                try:
                    await asyncio.wait(either, timeout=args.wait,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    ended.cancel()
                if not reported.done():
                    if assoc.is_alive:
                        raise asyncio.TimeoutError
                    print(f"aiodimse commit: the peer ended the association before its "
                          f"report came (Transaction UID {transaction_uid}); it may send "
                          f"the report on a new association: receive it with --listen-port",
                          file=sys.stderr)
                    return EXIT_ERROR
                await _settle(assoc)  # our answer goes out before the release
            releasing.add(assoc)  # no await from here to the A-RELEASE-RQ
        event_type, info, via = await asyncio.wait_for(reported, args.wait)
        if carrier and carrier[0].is_acceptor:
            await _settle(carrier[0], closed=True)  # the SCP releases once answered
    except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        print(f"aiodimse commit: no report within {args.wait:g}s "
              f"(Transaction UID {transaction_uid})", file=sys.stderr)
        return EXIT_ERROR
    except (AiodimseError, OSError, ValueError) as exc:
        print(f"aiodimse commit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if server is not None:
            await server.shutdown(grace=2.0)
    return _print_report(transaction_uid, event_type, info, via, args.json)

"""``aiodimse ups create|get|set|claim|complete|cancel|find``: a UPS SCU (PS3.4 CC);
``subscribe|unsubscribe|watch`` (ups_watch_tools.py) join them under the one ``ups``.

One association per run. ``create`` pushes a SCHEDULED workitem (what the SCP
requires and the data set does not give is filled in: docs/ups.md) and prints its
UID; ``claim`` makes a Transaction UID (or takes ``--transaction-uid``), sets the
workitem IN PROGRESS under it and prints it; ``set``, ``complete`` and ``cancel``
take it back with ``-T``. ``complete`` first sets the Performed Procedure sequence
when the workitem has none (the final-state requirements of PS3.4 Table CC.2.5-3);
``cancel`` without ``-T`` asks for a cancel (Request UPS Cancel), with ``-T`` the
performer cancels, first giving the progress item a discontinuation reason code.
``find`` is a C-FIND over the Query class (``--model pull|watch`` for the others).

Exit status: 0 success, 1 warning, 2 failure, 3 no association or unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydicom.dataset import Dataset

from ..association import Association
from ..errors import AiodimseError
from ..services.ups.uids import (
    ACTION_CHANGE_STATE,
    ACTION_REQUEST_CANCEL,
    UPS_PULL,
    UPS_PUSH,
    UPS_QUERY,
    UPS_WATCH,
)
from ..services.ups.workitems import UNSPECIFIED_REASON, now_dt
from ..status import Category, code_to_category
from ..uids import new_uid
from . import ups_watch_tools
from .common import (
    EXIT_ERROR,
    SettingError,
    add_connection_args,
    client_ssl_context,
    describe_failure,
    describe_status,
    exit_code_for,
    load_dataset,
    make_ae,
    run_requests,
)
from .query_tools import build_identifier

__all__ = ["add_parsers", "subcommands", "COMMANDS", "new_workitem"]

_WORKITEM_COMMANDS = ("create", "get", "set", "claim", "complete", "cancel", "find")
# every ``aiodimse ups`` subcommand: the workitem ones here, the subscription ones in
# ups_watch_tools (registered under the same ``ups`` parser, once)
COMMANDS = _WORKITEM_COMMANDS + ups_watch_tools.COMMANDS
_MODELS = {"query": UPS_QUERY, "pull": UPS_PULL, "watch": UPS_WATCH}
_FIND_KEYS = ("SOPInstanceUID", "ProcedureStepState", "ProcedureStepLabel", "WorklistLabel",
              "ScheduledProcedureStepPriority", "ScheduledProcedureStepStartDateTime",
              "PatientName", "PatientID")
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
          "ScheduledWorkitemCodeSequence", "InputInformationSequence",
          "ScheduledStationNameCodeSequence")


def new_workitem(ds: Dataset | None, label: str) -> Dataset:
    """``ds`` with what an N-CREATE needs and it lacks: SCHEDULED, MEDIUM priority,
    ``label``, start now, READY, and the Type 2 attributes empty."""
    ds = ds if ds is not None else Dataset()
    defaults = {"ProcedureStepState": "SCHEDULED", "ScheduledProcedureStepPriority": "MEDIUM",
                "ProcedureStepLabel": label, "WorklistLabel": "DEFAULT",
                "ScheduledProcedureStepStartDateTime": now_dt()[:14],
                "InputReadinessState": "READY"}
    for keyword, value in defaults.items():
        if keyword not in ds:
            setattr(ds, keyword, value)
    for keyword in _TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, [] if keyword.endswith("Sequence") else "")
    return ds


def add_parsers(sub: Any) -> None:
    ups: argparse.ArgumentParser = sub.add_parser(
        "ups", help="Unified Procedure Step SCU: workitems (docs/ups.md)")
    commands = ups.add_subparsers(dest="ups_command", required=True)
    texts = {"create": "push a SCHEDULED workitem (N-CREATE); prints its UID",
             "get": "a workitem's attributes (N-GET)",
             "set": "change a workitem (N-SET; -T for one IN PROGRESS)",
             "claim": "set a workitem IN PROGRESS (N-ACTION); prints the Transaction UID",
             "complete": "set a claimed workitem COMPLETED (N-SET, N-ACTION)",
             "cancel": "cancel: ask for it, or with -T as its performer (N-ACTION)",
             "find": "find workitems (C-FIND)"}
    for name in _WORKITEM_COMMANDS:
        p: argparse.ArgumentParser = commands.add_parser(name, help=texts[name])
        add_connection_args(p, repeat=False)
        if name != "find":
            p.add_argument("uid", nargs="?" if name == "create" else None,
                           help="the workitem's SOP Instance UID" + (
                               " (default: the SCP assigns one)" if name == "create" else ""))
        if name in ("create", "set"):
            p.add_argument("--dataset", help="DICOM file or DICOM JSON ('-' for stdin; "
                                             "default none)")
        if name in ("create", "set", "find"):
            p.add_argument("-k", "--key", action="append", default=[], metavar="KW=VALUE",
                           help="an attribute (find: a key, no value to return it; "
                                "repeatable; default none)")
        if name in ("set", "complete", "claim", "cancel"):
            p.add_argument("-T", "--transaction-uid", required=name in ("set", "complete"),
                           help="the Transaction UID" + (
                               " (default: a new one)" if name == "claim" else
                               " (cancel as the performer; default: request a cancel)"
                               if name == "cancel" else
                               " (required; for set: none for a SCHEDULED workitem)"))
        if name == "create":
            p.add_argument("--label", default="aiodimse",
                           help="Procedure Step Label if the data set has none "
                                "(default %(default)s)")
        if name == "get":
            p.add_argument("-t", "--tag", action="append", default=[],
                           help="an attribute to get (keyword or tag; repeatable; "
                                "default none: all)")
        if name == "cancel":
            p.add_argument("--reason", help="Reason For Cancellation (default none)")
        if name == "find":
            p.add_argument("--model", choices=tuple(_MODELS), default="query",
                           help="the UPS SOP class to query (default %(default)s)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(run=_find if name == "find" else _run, operation=name)
    ups_watch_tools.add_ups_commands(commands)


def subcommands(sub: Any) -> list[argparse.ArgumentParser]:
    """The parsers of ``aiodimse ups ...`` (``sub``: the main parser's subparsers)."""
    ups = sub.choices["ups"]
    action = next(a for a in ups._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices.values())


def _state(state: str, transaction_uid: str | None, reason: str | None = None) -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = state
    if transaction_uid:
        ds.TransactionUID = transaction_uid
    if reason:
        ds.ReasonForCancellation = reason
    return ds


def _tags(texts: list[str]) -> list[int]:
    ds = build_identifier(texts, "X")
    return [int(e.tag) for e in ds if e.keyword != "QueryRetrieveLevel"]


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


async def _complete(assoc: Association, uid: str, lock: str, station: str
                    ) -> tuple[Dataset, Dataset | None]:
    """Set the Performed Procedure sequence when the workitem has none (performed as
    scheduled: its workitem codes; station: ours, a local code), then COMPLETED."""
    status, have = await assoc.send_n_get([0x00741216, 0x00404018], UPS_PUSH, uid, UPS_PULL)
    if code_to_category(int(status.Status)) is not Category.SUCCESS:
        return status, None
    if have is None or not have.get("UnifiedProcedureStepPerformedProcedureSequence"):
        performed = Dataset()
        performed.PerformedStationNameCodeSequence = [_code(station, "99AIODIMSE", station)]
        performed.PerformedProcedureStepStartDateTime = now_dt()[:14]
        performed.PerformedWorkitemCodeSequence = list(
            (have or Dataset()).get("ScheduledWorkitemCodeSequence") or ()) or [
            _code("WORKITEM", "99AIODIMSE", "unspecified workitem")]
        performed.PerformedProcedureStepEndDateTime = now_dt()[:14]
        performed.OutputInformationSequence = []
        mods = Dataset()
        mods.UnifiedProcedureStepPerformedProcedureSequence = [performed]
        mods.TransactionUID = lock
        status, _ = await assoc.send_n_set(mods, UPS_PUSH, uid, UPS_PULL)
        if code_to_category(int(status.Status)) is not Category.SUCCESS:
            return status, None
    return await assoc.send_n_action(_state("COMPLETED", lock), ACTION_CHANGE_STATE,
                                     UPS_PUSH, uid, UPS_PULL)


async def _cancel(assoc: Association, uid: str, lock: str, reason: str | None
                  ) -> tuple[Dataset, Dataset | None]:
    """As the performer: give the progress item the reason (and CID 9300's
    "unspecified" code when it has none: a CANCELED final-state requirement), then
    CANCELED."""
    status, have = await assoc.send_n_get([0x00741002], UPS_PUSH, uid, UPS_PULL)
    if code_to_category(int(status.Status)) is not Category.SUCCESS:
        return status, None
    items = list((have or Dataset()).get("ProcedureStepProgressInformationSequence") or ())
    item = items[0] if items else Dataset()
    if not item.get("ProcedureStepDiscontinuationReasonCodeSequence"):
        item.ProcedureStepDiscontinuationReasonCodeSequence = [_code(*UNSPECIFIED_REASON)]
    if reason:
        item.ReasonForCancellation = reason
    mods = Dataset()
    mods.ProcedureStepProgressInformationSequence = [item, *items[1:]]
    mods.TransactionUID = lock
    status, _ = await assoc.send_n_set(mods, UPS_PUSH, uid, UPS_PULL)
    if code_to_category(int(status.Status)) is not Category.SUCCESS:
        return status, None
    return await assoc.send_n_action(_state("CANCELED", lock, reason), ACTION_CHANGE_STATE,
                                     UPS_PUSH, uid, UPS_PULL)


async def _run(args: argparse.Namespace) -> int:
    name: str = args.operation
    uid: str | None = args.uid
    lock: str | None = getattr(args, "transaction_uid", None)
    try:
        data = load_dataset(args.dataset, args.key) if name in ("create", "set") else None
        tags = _tags(args.tag) if name == "get" else []
    except (OSError, ValueError) as exc:
        print(f"aiodimse ups {name}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if name == "set" and data is None:
        print("aiodimse ups set: a modification list is needed (--dataset or -k)",
              file=sys.stderr)
        return EXIT_ERROR
    if name == "claim" and not lock:
        lock = new_uid()
    ae = make_ae(args, [UPS_PUSH, UPS_PULL])

    async def operation(assoc: Association) -> tuple[Dataset, Dataset | None]:
        target = uid or ""
        if name == "create":
            return await assoc.send_n_create(new_workitem(data, args.label), UPS_PUSH, uid)
        if name == "get":
            return await assoc.send_n_get(tags or None, UPS_PUSH, target)
        if name == "set":
            assert data is not None
            if lock:
                data.TransactionUID = lock
            return await assoc.send_n_set(data, UPS_PUSH, target, UPS_PULL)
        if name == "claim":
            return await assoc.send_n_action(_state("IN PROGRESS", lock), ACTION_CHANGE_STATE,
                                             UPS_PUSH, target, UPS_PULL)
        if name == "complete":
            assert lock is not None
            return await _complete(assoc, target, lock, ae.ae_title)
        if lock:  # cancel as the performer
            return await _cancel(assoc, target, lock, args.reason)
        request = Dataset()
        if args.reason:
            request.ReasonForCancellation = args.reason
        return await assoc.send_n_action(request, ACTION_REQUEST_CANCEL, UPS_PUSH, target)

    try:
        outcome = await run_requests(args, ae, operation)
    except SettingError as exc:
        print(f"aiodimse ups {name}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if outcome.error is not None or outcome.last is None:
        print(f"aiodimse ups {name}: {outcome.error}", file=sys.stderr)
        return EXIT_ERROR
    status, reply = outcome.last
    code = int(status.Status)
    performed = code_to_category(code) in (Category.SUCCESS, Category.WARNING)
    if args.json:
        doc: dict[str, Any] = {
            "status": code, "category": code_to_category(code).value,
            "status_dataset": status.to_json_dict(),
            "reply": None if reply is None else reply.to_json_dict()}
        if name == "claim":
            doc["transaction_uid"] = lock if performed else None
        print(json.dumps(doc, indent=2))
    elif name in ("create", "claim") and performed:
        print(status.AffectedSOPInstanceUID if name == "create" else lock)
        if code:
            print(f"aiodimse ups {name}: {describe_status(status)}", file=sys.stderr)
    elif name == "get" and performed:
        print(reply if reply is not None else "")
    else:
        print(f"UPS {name.upper()} status {describe_status(status)}",
              file=sys.stdout if performed else sys.stderr)
    return exit_code_for(code)


async def _find(args: argparse.Namespace) -> int:
    try:
        identifier = build_identifier(args.key or list(_FIND_KEYS), "X")
        del identifier.QueryRetrieveLevel
        ssl_context = client_ssl_context(args)
    except (ValueError, SettingError) as exc:
        print(f"aiodimse ups find: {exc}", file=sys.stderr)
        return EXIT_ERROR
    model = _MODELS[args.model]
    ae = make_ae(args, [model])
    matches: list[Dataset] = []
    final: Dataset | None = None
    established = False
    try:
        async with ae.associate(
            args.host, args.port, ae_title=args.called_aet, ssl_context=ssl_context,
            server_hostname=None if ssl_context is None or args.tls_no_verify else args.host,
        ) as assoc:
            established = True
            async for status, found in assoc.send_c_find(identifier, model):
                if code_to_category(int(status.Status)) is Category.PENDING:
                    if found is not None:
                        if not args.json:
                            print(found, end="\n\n", flush=True)
                        matches.append(found)
                    continue
                final = status
    except (AiodimseError, OSError, TimeoutError) as exc:
        print("aiodimse ups find: " + describe_failure(
            exc, args.host, args.port, tls=ssl_context is not None, established=established),
              file=sys.stderr)
        return EXIT_ERROR
    if final is None:
        print("aiodimse ups find: no final response", file=sys.stderr)
        return EXIT_ERROR
    code = int(final.Status)
    if args.json:
        print(json.dumps({"status": code, "category": code_to_category(code).value,
                          "matches": [m.to_json_dict() for m in matches]}, indent=2))
    else:
        print(f"C-FIND: {len(matches)} workitems, status {describe_status(final)}")
    return exit_code_for(code)

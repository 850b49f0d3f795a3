"""``aiodimse find``, ``get`` and ``move``: Query/Retrieve SCU, as DCMTK's findscu,
getscu and movescu.

The identifier is built from ``-k KEY[=VALUE]`` (a keyword or ``gggg,eeee``; no
value: a key to return) and ``-L/--level`` (QueryRetrieveLevel, default STUDY);
``-P`` Patient Root, ``-S`` Study Root (the default). ``find`` prints each match
(pydicom's text, or with ``--json`` one DICOM JSON list); ``get`` writes each
instance it receives to ``--output-dir`` as ``<SOPInstanceUID>.dcm`` (streamed to
the file as it arrives: any size in bounded memory), proposing the storage SOP
classes with the SCP role; ``move`` asks the SCP to send to ``--dest``.

Exit status: 0 success, 1 warning (some sub-operations failed), 2 failure or
cancel, 3 no association.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from .. import evt
from ..dimse.commands import is_valid_uid
from ..errors import AiodimseError
from ..events import Event
from ..presentation import StoragePresentationContexts, build_role
from ..scu_query import query_model_uid
from ..status import Category, code_to_category
from .common import (
    EXIT_ERROR,
    EXIT_FAILURE,
    EXIT_SUCCESS,
    EXIT_WARNING,
    SettingError,
    add_connection_args,
    client_ssl_context,
    describe_failure,
    describe_status,
    make_ae,
)

__all__ = ["add_parsers", "build_identifier", "COMMANDS"]

COMMANDS = ("find", "get", "move")
LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
_COUNTS = ("NumberOfCompletedSuboperations", "NumberOfFailedSuboperations",
           "NumberOfWarningSuboperations")


def add_parsers(sub: Any) -> None:
    for name, text in (("find", "C-FIND SCU: query an archive"),
                       ("get", "C-GET SCU: retrieve instances over the association"),
                       ("move", "C-MOVE SCU: have an archive send instances to an AE")):
        p: argparse.ArgumentParser = sub.add_parser(name, help=text)
        add_connection_args(p, repeat=False)
        model = p.add_mutually_exclusive_group()
        model.add_argument("-P", "--patient", dest="model", action="store_const", const="P",
                           help="Patient Root information model")
        model.add_argument("-S", "--study", dest="model", action="store_const", const="S",
                           help="Study Root information model (the default)")
        p.add_argument("-L", "--level", type=str.upper, choices=LEVELS, default="STUDY",
                       help="Query/Retrieve Level (default %(default)s)")
        p.add_argument("-k", "--key", action="append", default=[], metavar="KEY[=VALUE]",
                       help="a key: keyword or gggg,eeee, with a value to match or none "
                            "to return it (repeatable; default none)")
        if name == "get":
            p.add_argument("--output-dir", "-od", default=".", type=Path,
                           help="where received instances are written (default: here)")
        if name == "move":
            p.add_argument("--dest", "-aem", required=True, metavar="AET",
                           help="the move destination's AE title (required)")
        p.add_argument("--json", action="store_true",
                       help="print the matches / the result as JSON")
        p.set_defaults(run=_run, operation=name, model="S")


def _tag(text: str) -> int:
    cleaned = text.strip().strip("()").replace(",", "")
    try:
        return int(Tag(int(cleaned, 16))) if len(cleaned) == 8 else int(Tag(text.strip()))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a keyword or tag: {text!r}") from exc


def build_identifier(keys: list[str], level: str) -> Dataset:
    """The identifier of ``-k`` keys at ``level``."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for text in keys:
        name, _, value = text.partition("=")
        tag = _tag(name)
        try:
            vr = dictionary_VR(tag)
        except KeyError as exc:
            raise ValueError(f"unknown attribute {name!r}") from exc
        keyword = keyword_for_tag(tag)
        if vr == "SQ":
            ds.add_new(tag, vr, [])
        elif keyword and value:
            setattr(ds, keyword, value)
        else:
            ds.add_new(tag, vr, value or None)
    return ds


def _exit(code: int) -> int:
    category = code_to_category(code)
    return {Category.SUCCESS: EXIT_SUCCESS, Category.WARNING: EXIT_WARNING}.get(
        category, EXIT_FAILURE)


async def _run(args: argparse.Namespace) -> int:
    name: str = args.operation
    try:
        identifier = build_identifier(args.key, args.level)
        model = query_model_uid(args.model, name)
        ssl_context = client_ssl_context(args)
    except (ValueError, SettingError) as exc:
        print(f"aiodimse {name}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    ae = make_ae(args, [model])
    ext_neg: list[Any] = []
    handlers: list[Any] = []
    received: list[str] = []
    if name == "get":
        out: Path = args.output_dir
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"aiodimse get: --output-dir {out}: {exc.strerror}", file=sys.stderr)
            return EXIT_ERROR
        ae.store_to_file = True
        ae.store_directory = str(out)
        for ctx in StoragePresentationContexts[:127]:
            ae.add_requested_context(ctx.abstract_syntax)
            ext_neg.append(build_role(ctx.abstract_syntax, scp_role=True))

        async def on_store(event: Event) -> int:
            uid = str(event.request.AffectedSOPInstanceUID)
            if not is_valid_uid(uid):
                return 0xA900
            target = out / f"{uid}.dcm"
            path = event.extra.get("dataset_path")
            if path is not None:
                await asyncio.to_thread(os.replace, path, target)
            else:  # (a deflated context: in memory)
                ds = event.dataset
                ds.file_meta = event.file_meta
                await asyncio.to_thread(ds.save_as, target, enforce_file_format=True)
            received.append(str(target))
            return 0x0000

        handlers.append((evt.EVT_C_STORE, on_store))
    established = False
    try:
        async with ae.associate(
            args.host, args.port, ae_title=args.called_aet, ext_neg=ext_neg,
            evt_handlers=handlers, ssl_context=ssl_context,
            server_hostname=None if ssl_context is None or args.tls_no_verify else args.host,
        ) as assoc:
            established = True
            if name == "find":
                responses = assoc.send_c_find(identifier, model)
            elif name == "get":
                responses = assoc.send_c_get(identifier, model)
            else:
                responses = assoc.send_c_move(identifier, args.dest, model)
            matches: list[Dataset] = []
            final: Dataset | None = None
            failed: Dataset | None = None
            async for status, found in responses:
                if code_to_category(int(status.Status)) is Category.PENDING:
                    if name == "find" and found is not None:
                        if not args.json:
                            print(found, end="\n\n", flush=True)
                        matches.append(found)
                    continue
                final, failed = status, found
    except (AiodimseError, OSError, asyncio.TimeoutError) as exc:
        print(f"aiodimse {name}: " + describe_failure(
            exc, args.host, args.port, tls=ssl_context is not None, established=established),
              file=sys.stderr)
        return EXIT_ERROR
    if final is None:
        print(f"aiodimse {name}: no final response", file=sys.stderr)
        return EXIT_ERROR
    code = int(final.Status)
    counts = {k: int(final.get(k, 0) or 0) for k in _COUNTS} if name != "find" else {}
    if args.json:
        doc: dict[str, Any] = {"status": code, "category": code_to_category(code).value}
        if name == "find":
            doc["matches"] = [m.to_json_dict() for m in matches]
        else:
            doc |= {"completed": counts[_COUNTS[0]], "failed": counts[_COUNTS[1]],
                    "warning": counts[_COUNTS[2]]}
            if failed is not None and "FailedSOPInstanceUIDList" in failed:
                uids = failed.FailedSOPInstanceUIDList
                doc["failed_instances"] = [uids] if isinstance(uids, str) else list(uids)
            if name == "get":
                doc["files"] = received
        print(json.dumps(doc, indent=2))
    elif name == "find":
        print(f"C-FIND: {len(matches)} matches, status {describe_status(final)}")
    else:
        print(f"C-{name.upper()}: completed {counts[_COUNTS[0]]}, failed "
              f"{counts[_COUNTS[1]]}, warning {counts[_COUNTS[2]]}, status "
              f"{describe_status(final)}")
    return _exit(code)

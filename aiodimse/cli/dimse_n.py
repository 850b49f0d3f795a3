"""``aiodimse echo`` and the DIMSE-N SCU tools: n-action, n-create, n-set, n-get,
n-delete, n-event-report. One request per run, or ``--repeat``/``--concurrency``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydicom.dataset import Dataset
from pydicom.tag import Tag

from ..association import Association
from ..presentation import VERIFICATION, build_role
from .common import (
    EXIT_ERROR,
    add_connection_args,
    load_dataset,
    make_ae,
    report,
    run_requests,
)

__all__ = ["add_parsers", "COMMANDS"]

COMMANDS = ("echo", "n-action", "n-create", "n-set", "n-get", "n-delete", "n-event-report")


def _parse_tag(text: str) -> int:
    """``(0010,0010)``, ``00100010``, ``0x00100010`` or a keyword such as ``PatientName``."""
    cleaned = text.strip().strip("()").replace(",", "")
    try:
        return int(Tag(int(cleaned, 16)))
    except ValueError:
        return int(Tag(text.strip()))


def _add(sub: Any, name: str, help_text: str, *, instance: str, data: str | None) -> Any:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    add_connection_args(parser)
    if name != "echo":
        parser.add_argument("-c", "--class-uid", required=True, help="the SOP Class UID")
        parser.add_argument("-i", "--instance-uid", required=instance == "required",
                            help="the SOP Instance UID" + (
                                "" if instance == "required"
                                else " (default none: the SCP assigns one)"))
        parser.add_argument("--meta-uid", help="propose this Meta SOP Class instead (default none: "
                                 "the class itself)")
    if data is not None:
        parser.add_argument("dataset", nargs="?" if data == "optional" else None,
                            help="DICOM file or DICOM JSON ('-' for stdin)")
        parser.add_argument("-k", "--key", action="append", default=[], metavar="KW=VALUE",
                            help="set an attribute of the data set (repeatable; default "
                                 "none)")
    parser.add_argument("--json", action="store_true", help="print the reply as DICOM JSON")
    parser.set_defaults(run=_run, operation=name)
    return parser


def add_parsers(sub: Any) -> None:
    _add(sub, "echo", "C-ECHO (verification) SCU", instance="none", data=None)
    p = _add(sub, "n-action", "N-ACTION SCU", instance="required", data="optional")
    p.add_argument("-a", "--action-type", type=int, required=True, help="Action Type ID")
    _add(sub, "n-create", "N-CREATE SCU", instance="optional", data="optional")
    _add(sub, "n-set", "N-SET SCU", instance="required", data="optional")
    p = _add(sub, "n-get", "N-GET SCU", instance="required", data=None)
    p.add_argument("-t", "--tag", action="append", default=[],
                   help="an attribute to get (tag or keyword; repeatable; default none: "
                        "all)")
    _add(sub, "n-delete", "N-DELETE SCU", instance="required", data=None)
    p = _add(sub, "n-event-report", "N-EVENT-REPORT SCU (proposes the SCP role)",
             instance="required", data="optional")
    p.add_argument("-e", "--event-type", type=int, required=True, help="Event Type ID")


async def _run(args: argparse.Namespace) -> int:
    name: str = args.operation
    try:
        dataset = (
            load_dataset(args.dataset, args.key) if hasattr(args, "dataset") else None
        )
        tags = [_parse_tag(t) for t in getattr(args, "tag", [])]
    except (OSError, ValueError) as exc:
        print(f"aiodimse {name}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if name == "n-set" and dataset is None:
        print("aiodimse n-set: a modification list is needed (a file or -k)", file=sys.stderr)
        return EXIT_ERROR
    class_uid: str = getattr(args, "class_uid", VERIFICATION)
    instance_uid: str | None = getattr(args, "instance_uid", None)
    meta_uid: str | None = getattr(args, "meta_uid", None)
    ae = make_ae(args, [meta_uid or class_uid])
    ext_neg = []
    if name == "n-event-report":  # the SCP of the class sends event reports
        ext_neg.append(build_role(meta_uid or class_uid, scu_role=False, scp_role=True))

    async def operation(assoc: Association) -> tuple[Dataset, Dataset | None]:
        inst = instance_uid or ""
        if name == "echo":
            return await assoc.send_c_echo(), None
        if name == "n-action":
            return await assoc.send_n_action(dataset, args.action_type, class_uid, inst,
                                             meta_uid)
        if name == "n-create":
            return await assoc.send_n_create(dataset, class_uid, instance_uid, meta_uid)
        if name == "n-set":
            return await assoc.send_n_set(dataset or Dataset(), class_uid, inst, meta_uid)
        if name == "n-get":
            return await assoc.send_n_get(tags or None, class_uid, inst, meta_uid)
        if name == "n-delete":
            return await assoc.send_n_delete(class_uid, inst, meta_uid), None
        return await assoc.send_n_event_report(dataset, args.event_type, class_uid, inst,
                                               meta_uid)

    outcome = await run_requests(args, ae, operation, ext_neg=ext_neg, repeat=args.repeat,
                                 concurrency=args.concurrency)
    return report(name.upper(), outcome, as_json=args.json, repeat=args.repeat)

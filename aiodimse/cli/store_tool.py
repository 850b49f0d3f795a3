"""``aiodimse store``: a Storage SCU, as DCMTK's storescu: files and folders, recursive.

A context is proposed per SOP class and transfer syntax found (an uncompressed
syntax with the other non-deflated uncompressed ones behind it, so the SCP may pick; a
compressed one alone: nothing is transcoded). Over 128 such contexts, the files
go over several associations, one per 128. Each file is sent as stored
(``send_c_store`` streams a large one from disk). A progress line on a terminal,
then ``stored N, failed M, skipped K (why)``. ``--commit`` then asks for storage
commitment of what was stored, with ``aiodimse commit``'s code.

Exit status: 0 every file stored (and committed), 1 some failed, were skipped or
were not committed, 2 none stored, 3 no association (or nothing to send).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.errors import InvalidDicomError

from ..ae import AE
from ..errors import AiodimseError
from ..part10 import read_meta
from ..presentation import (
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    RequestedContext,
)
from ..status import Category, code_to_category
from ..store_scu import NoStoreContextError, file_identity
from . import commit
from .common import (
    EXIT_ERROR,
    EXIT_FAILURE,
    EXIT_SUCCESS,
    EXIT_WARNING,
    SettingError,
    add_connection_args,
    client_ssl_context,
    describe_failure,
)

__all__ = ["add_parsers", "run_store", "MAX_CONTEXTS", "plan"]

MAX_CONTEXTS = 128  # presentation contexts in one association request (PS3.8 9.3.2.2)


def add_parsers(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "store", help="C-STORE SCU: send DICOM files and folders (recursive)")
    add_connection_args(p, repeat=False)
    p.add_argument("paths", nargs="+", help="DICOM files or directories")
    p.add_argument("--commit", action="store_true",
                   help="then request storage commitment of what was stored")
    p.add_argument("--commit-wait", type=float, default=60.0, metavar="S",
                   help="seconds to wait for the commitment report (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run_store)


@dataclass(frozen=True, slots=True)
class Instance:
    path: str
    sop_class: str
    sop_instance: str
    syntax: str


@dataclass(slots=True)
class Tally:
    """What became of the files."""

    stored: list[Instance] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    skipped: Counter[str] = field(default_factory=Counter)  # why -> files

    def summary(self) -> str:
        why = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return (f"stored {len(self.stored)}, failed {len(self.failed)}, "
                f"skipped {sum(self.skipped.values())}" + (f" ({why})" if why else ""))


def _files(paths: Sequence[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for file in sorted(files):
                    yield Path(root) / file
        else:
            yield path


def _read(path: Path) -> Instance | str:
    """The instance in a file, or why it is not sent: its file meta and first
    elements read as ``send_c_store`` reads them (part10.py), not a pydicom parse."""
    try:
        with path.open("rb") as fp:
            found = read_meta(fp)
            if found is None:
                return "not DICOM"
            offset, meta = found
            if not meta.get(0x0010):
                return "no SOP Class, SOP Instance UID or transfer syntax"
            sop_class, sop_instance = file_identity(path, fp, offset, meta)
    except FileNotFoundError:
        return "missing"
    except (InvalidDicomError, EOFError):
        return "not DICOM"
    except OSError:
        return "unreadable"
    except Exception:  # a broken file: struct, decoding or pydicom errors
        return "not DICOM"
    if not sop_class or not sop_instance:
        return "no SOP Class, SOP Instance UID or transfer syntax"
    return Instance(str(path), sop_class, sop_instance, meta[0x0010])


# what an uncompressed instance may be re-encoded in (not Deflated: an SCP picking it
# would make us deflate what needs no deflating)
_RECODE = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN)


def _context(pair: tuple[str, str]) -> RequestedContext:
    sop_class, syntax = pair
    if syntax in _RECODE:  # may be re-encoded: the other uncompressed ones behind it
        return RequestedContext(sop_class, tuple(dict.fromkeys((syntax, *_RECODE))))
    return RequestedContext(sop_class, (syntax,))


def plan(instances: Sequence[Instance]) -> list[tuple[list[RequestedContext], list[Instance]]]:
    """Batches of (contexts, instances): each at most ``MAX_CONTEXTS`` contexts."""
    batches: list[tuple[dict[tuple[str, str], None], list[Instance]]] = []
    where: dict[tuple[str, str], int] = {}
    for inst in instances:
        pair = (inst.sop_class, inst.syntax)
        index = where.get(pair)
        if index is None:
            if not batches or len(batches[-1][0]) >= MAX_CONTEXTS:
                batches.append(({}, []))
            index = where[pair] = len(batches) - 1
            batches[index][0][pair] = None
        batches[index][1].append(inst)
    return [([_context(p) for p in pairs], found) for pairs, found in batches]


class _Progress:
    """``stored i/N`` on one line, only on a terminal."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.enabled = sys.stderr.isatty()

    def step(self) -> None:
        self.done += 1
        if self.enabled:
            end = "\n" if self.done == self.total else ""
            sys.stderr.write(f"\rsending {self.done}/{self.total}{end}")
            sys.stderr.flush()


async def _send(args: argparse.Namespace, contexts: list[RequestedContext],  # noqa: PLR0917
                instances: list[Instance], tally: Tally, progress: _Progress,
                ssl_context: Any) -> None:
    ae = AE(args.calling_aet)
    ae.connection_timeout = args.connect_timeout or args.timeout
    ae.acse_timeout = args.acse_timeout or args.timeout
    ae.dimse_timeout = args.dimse_timeout or args.timeout
    ae.maximum_pdu_size = args.max_pdu
    async with ae.associate(
        args.host, args.port, contexts, ae_title=args.called_aet, ssl_context=ssl_context,
        server_hostname=None if ssl_context is None or args.tls_no_verify else args.host,
    ) as assoc:
        for inst in instances:
            try:
                status = await assoc.send_c_store(inst.path)
            except NoStoreContextError:
                tally.skipped["no accepted context"] += 1
            except (OSError, ValueError) as exc:
                tally.failed.append((inst.path, str(exc)))
            else:
                code = int(status.Status)
                if code_to_category(code) in (Category.SUCCESS, Category.WARNING):
                    tally.stored.append(inst)
                else:
                    tally.failed.append((inst.path, f"0x{code:04X}"))
            progress.step()


async def run_store(args: argparse.Namespace) -> int:
    try:
        ssl_context = client_ssl_context(args)
    except SettingError as exc:
        print(f"aiodimse store: {exc}", file=sys.stderr)
        return EXIT_ERROR
    tally = Tally()
    instances: list[Instance] = []
    for path in _files(args.paths):
        found = await asyncio.to_thread(_read, path)
        if isinstance(found, str):
            tally.skipped[found] += 1
        else:
            instances.append(found)
    if not instances:
        print(f"aiodimse store: no DICOM instances to send ({tally.summary()})",
              file=sys.stderr)
        return EXIT_ERROR
    progress = _Progress(len(instances))
    established = False
    try:
        for contexts, batch in plan(instances):
            await _send(args, contexts, batch, tally, progress, ssl_context)
            established = True
    except (AiodimseError, OSError, asyncio.TimeoutError) as exc:
        print("aiodimse store: " + describe_failure(
            exc, args.host, args.port, tls=ssl_context is not None,
            established=established), file=sys.stderr)
        print(tally.summary())
        return EXIT_ERROR
    status = (EXIT_SUCCESS if not tally.failed and not tally.skipped
              else EXIT_WARNING if tally.stored else EXIT_FAILURE)
    if args.json:
        print(json.dumps({
            "stored": [{"path": i.path, "class": i.sop_class, "instance": i.sop_instance}
                       for i in tally.stored],
            "failed": [{"path": name, "why": why} for name, why in tally.failed],
            "skipped": dict(tally.skipped),
            "summary": tally.summary(),
        }, indent=2))
    else:
        for name, why in tally.failed:
            print(f"failed  {name}: {why}")
        print(tally.summary())
    if args.commit and tally.stored:
        committed = await commit.run_commit(argparse.Namespace(**{
            **vars(args), "paths": [], "transaction_uid": None, "listen_port": None,
            "listen_host": "0.0.0.0", "wait": args.commit_wait, "json": args.json,
            "uid": [f"{i.sop_class}:{i.sop_instance}" for i in tally.stored]}))
        status = max(status, EXIT_WARNING if committed != EXIT_SUCCESS else status)
    return status

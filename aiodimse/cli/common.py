"""What every SCU command shares: connection options, data set I/O, exit statuses, load.

Exit statuses of the SCU tools (docs/cli.md): 0 success, 1 warning, 2 failure (any
other DIMSE status), 3 the association could not be made or broke (rejected,
aborted, refused connection, timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from ..ae import AE
from ..association import Association
from ..errors import (
    AiodimseError,
    AssociationAbortedError,
    AssociationError,
    DIMSETimeoutError,
)
from ..status import GENERAL_STATUS, Category, code_to_category
from ..wire.items import RoleSelection
from . import checks

__all__ = [
    "EXIT_SUCCESS",
    "EXIT_WARNING",
    "EXIT_FAILURE",
    "EXIT_ERROR",
    "add_connection_args",
    "client_ssl_context",
    "make_ae",
    "load_dataset",
    "exit_code_for",
    "describe_status",
    "print_result",
    "Outcome",
    "SettingError",
    "describe_failure",
    "run_requests",
    "report",
]

EXIT_SUCCESS = 0
EXIT_WARNING = 1
EXIT_FAILURE = 2
EXIT_ERROR = 3

Operation = Callable[[Association], Awaitable[tuple[Dataset, Dataset | None]]]


def add_connection_args(parser: argparse.ArgumentParser, *, repeat: bool = True) -> None:
    """``host port -aet -aec --max-pdu --timeout --tls...`` and, optionally, load options."""
    parser.add_argument("host", help="the peer's host name or address")
    parser.add_argument("port", type=checks.port, help="the peer's port")
    parser.add_argument("-aet", "--calling-aet", default="AIODIMSE", type=checks.ae_title,
                        help="our AE title (default %(default)s)")
    parser.add_argument("-aec", "--called-aet", default="ANY-SCP", type=checks.ae_title,
                        help="the peer's AE title (default %(default)s)")
    parser.add_argument("--max-pdu", "-pdu", type=checks.max_pdu, default=16382,
                        help="max PDU length we receive (default %(default)s; 0: no limit)")
    parser.add_argument("--timeout", type=checks.positive_seconds, default=30.0,
                        help="connect, association and DIMSE timeout in seconds "
                             "(default %(default)s)")
    # DCMTK's spellings, each overriding --timeout for its own wait
    parser.add_argument("-to", "--connect-timeout", type=checks.positive_seconds,
                        metavar="SECONDS", help="TCP connect timeout (default: --timeout)")
    parser.add_argument("-ta", "--acse-timeout", type=checks.positive_seconds,
                        metavar="SECONDS", help="association set-up and release timeout "
                                                "(default: --timeout)")
    parser.add_argument("-td", "--dimse-timeout", type=checks.positive_seconds,
                        metavar="SECONDS", help="wait for a response (default: --timeout)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="log errors only (DCMTK's -q)")
    parser.add_argument("-ll", "--log-level", type=checks.log_level, metavar="LEVEL",
                        help="fatal, error, warn, info, debug or trace (DCMTK's -ll; "
                             "default warn)")
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true", help="connect with TLS")
    tls.add_argument("--tls-ca", type=checks.readable_file,
                     help="CA certificates (PEM) to verify the peer with (default: "
                          "the system's)")
    tls.add_argument("--tls-cert", type=checks.readable_file,
                     help="our certificate (PEM), for client authentication (default "
                          "none)")
    tls.add_argument("--tls-key", type=checks.readable_file,
                     help="the key of --tls-cert (PEM; default: in the certificate's "
                          "file)")
    tls.add_argument("--tls-no-verify", action="store_true", help="do not verify the peer")
    if repeat:
        load = parser.add_argument_group("load")
        load.add_argument("--repeat", type=checks.positive_int, default=1,
                          help="send the request N times (default %(default)s)")
        load.add_argument("--concurrency", type=checks.positive_int, default=1,
                          help="over C associations at once (default %(default)s)")


class SettingError(ValueError):
    """A setting that cannot be used as given; the text names it and says why."""


def client_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context the options ask for, or None without ``--tls``."""
    if args.tls_key and not args.tls_cert:
        raise SettingError("--tls-key needs --tls-cert (the certificate it belongs to)")
    if not (args.tls or args.tls_ca or args.tls_cert):
        return None
    try:
        ctx = ssl.create_default_context(cafile=args.tls_ca)
    except (ssl.SSLError, OSError) as exc:
        raise SettingError(f"--tls-ca {args.tls_ca}: not a usable PEM CA file ({exc})") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.tls_cert:
        try:
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
        except (ssl.SSLError, OSError) as exc:
            key = f" and --tls-key {args.tls_key}" if args.tls_key else (
                " (the file holds no private key: give it with --tls-key)")
            raise SettingError(
                f"--tls-cert {args.tls_cert}{key}: not a usable certificate and key ({exc})"
            ) from None
    if args.tls_no_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_ae(args: argparse.Namespace, abstract_syntaxes: Sequence[str]) -> AE:
    """An AE with the command's timeouts and PDU size, proposing ``abstract_syntaxes``."""
    ae = AE(args.calling_aet)
    ae.connection_timeout = args.connect_timeout or args.timeout
    ae.acse_timeout = args.acse_timeout or args.timeout
    ae.dimse_timeout = args.dimse_timeout or args.timeout
    ae.maximum_pdu_size = args.max_pdu
    for uid in dict.fromkeys(abstract_syntaxes):
        ae.add_requested_context(uid)
    return ae


def load_dataset(path: str | None, assignments: Sequence[str] = ()) -> Dataset | None:
    """A data set from a DICOM file or DICOM JSON (``-`` reads JSON from stdin),
    then ``KEYWORD=VALUE`` assignments on top; None when there is neither."""
    ds: Dataset | None = None
    if path is not None:
        if path == "-":
            ds = Dataset.from_json(sys.stdin.read())
        else:
            raw = Path(path).read_bytes()
            if raw.lstrip()[:1] in (b"{", b"["):
                ds = Dataset.from_json(raw.decode("utf-8"))
            else:
                ds = dcmread(path, force=True)
                ds.file_meta = Dataset()  # type: ignore[assignment]
    for text in assignments:
        keyword, sep, value = text.partition("=")
        if not sep:
            raise ValueError(f"expected KEYWORD=VALUE, got {text!r}")
        if ds is None:
            ds = Dataset()
        setattr(ds, keyword.strip(), value)
    return ds


def exit_code_for(code: int) -> int:
    category = code_to_category(code)
    if category is Category.SUCCESS:
        return EXIT_SUCCESS
    if category is Category.WARNING:
        return EXIT_WARNING
    return EXIT_FAILURE


def describe_status(status: Dataset) -> str:
    code = int(status.Status)
    text = GENERAL_STATUS.get(code, code_to_category(code).value)
    comment = status.get("ErrorComment")
    return f"0x{code:04X} ({text}{': ' + str(comment) if comment else ''})"


def print_result(name: str, status: Dataset, reply: Dataset | None, *, as_json: bool) -> None:
    """The reply as pydicom's text, or one JSON object (status and DICOM JSON reply)."""
    if as_json:
        doc: dict[str, Any] = {
            "status": int(status.Status),
            "category": code_to_category(int(status.Status)).value,
            "status_dataset": status.to_json_dict(),
            "reply": None if reply is None else reply.to_json_dict(),
        }
        print(json.dumps(doc, indent=2))
        return
    print(f"{name} status {describe_status(status)}")
    uid = status.get("AffectedSOPInstanceUID")
    if uid:
        print(f"Affected SOP Instance UID: {uid}")
    if reply is not None and len(reply):
        print(reply)


@dataclass(slots=True)
class Outcome:
    """What a run of requests gave."""

    statuses: dict[int, int] = field(default_factory=dict)  # status code -> count
    last: tuple[Dataset, Dataset | None] | None = None
    error: str | None = None
    elapsed: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return EXIT_ERROR
        return max((exit_code_for(c) for c in self.statuses), default=EXIT_ERROR)


class _Progress:
    """A one-line progress bar on stderr, only for long runs on a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.enabled = total >= 100 and sys.stderr.isatty()
        self._shown = -1

    def step(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        percent = self.done * 100 // self.total
        if percent != self._shown:
            self._shown = percent
            bar = "#" * (percent // 5)
            sys.stderr.write(f"\r[{bar:<20}] {percent:3d}% {self.done}/{self.total}")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def describe_failure(exc: BaseException, host: str, port: int, *, tls: bool,
                     established: bool, timeout: float | None = None) -> str:
    """One line a person can act on, for what stopped a connection or association."""
    where = f"{host}:{port}"
    cause = exc.__cause__
    if isinstance(exc, AssociationError) and isinstance(
            cause, (OSError, TimeoutError, asyncio.TimeoutError)):
        exc = cause  # the library's "cannot connect": say it for a person
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {where}: connection refused (is a DICOM server listening there?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {host!r}: {exc.strerror}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS: the certificate of {where} was not accepted ({exc.verify_message}); "
                f"give its CA with --tls-ca")
    if isinstance(exc, ssl.SSLError):
        hint = " (is it a plain, non-TLS port? then drop --tls)" if tls else ""
        return f"TLS handshake with {where} failed: {exc.reason or exc}{hint}"
    if isinstance(exc, DIMSETimeoutError):
        return f"{where} did not answer a request within the DIMSE timeout: {exc}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):  # (distinct on 3.10)
        limit = f" within {timeout:g}s" if timeout is not None else ""
        return f"no answer from {where}{limit} (check the address, port and firewall)"
    if isinstance(exc, AssociationAbortedError) and not established:
        hint = ("" if tls else
                "; if the port expects DICOM over TLS, add --tls")
        return (f"{where} closed the connection before accepting the association "
                f"({exc}){hint}")
    if isinstance(exc, OSError) and not isinstance(exc, AiodimseError):
        return f"cannot talk to {where}: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


async def run_requests(
    args: argparse.Namespace,
    ae: AE,
    operation: Operation,
    *,
    ext_neg: Sequence[RoleSelection] = (),
    repeat: int = 1,
    concurrency: int = 1,
) -> Outcome:
    """Send ``repeat`` requests over ``concurrency`` associations; count the statuses."""
    outcome = Outcome()
    repeat = max(repeat, 1)
    remaining = [repeat]
    progress = _Progress(repeat)
    ssl_context = client_ssl_context(args)
    server_hostname = None if ssl_context is None or args.tls_no_verify else args.host

    established = [False]

    async def worker() -> None:
        async with ae.associate(
            args.host,
            args.port,
            ae_title=args.called_aet,
            max_pdu=args.max_pdu,
            ext_neg=list(ext_neg),
            ssl_context=ssl_context,
            server_hostname=server_hostname,
        ) as assoc:
            established[0] = True
            while remaining[0] > 0:
                remaining[0] -= 1
                status, reply = await operation(assoc)
                code = int(status.Status)
                outcome.statuses[code] = outcome.statuses.get(code, 0) + 1
                outcome.last = (status, reply)
                progress.step()

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, repeat)))))
    except (AiodimseError, OSError, TimeoutError, asyncio.TimeoutError, ValueError) as exc:
        outcome.error = describe_failure(
            exc, args.host, args.port, tls=ssl_context is not None,
            established=established[0], timeout=args.connect_timeout or args.timeout)
    outcome.elapsed = time.perf_counter() - start
    return outcome


def report(name: str, outcome: Outcome, *, as_json: bool, repeat: int) -> int:
    """Print a single reply, or a summary of many; return the exit status."""
    if outcome.error is not None:
        print(f"aiodimse {name.lower()}: {outcome.error}", file=sys.stderr)
    if repeat <= 1:
        if outcome.last is not None:
            print_result(name, *outcome.last, as_json=as_json)
        elif as_json:  # a script reading stdout gets an object on failure too
            print(json.dumps({"error": outcome.error, "exit_status": outcome.exit_code}))
        return outcome.exit_code
    total = sum(outcome.statuses.values())
    rate = total / outcome.elapsed if outcome.elapsed > 0 else 0.0
    counts = ", ".join(f"0x{c:04X} x{n}" for c, n in sorted(outcome.statuses.items()))
    if as_json:
        print(json.dumps({"requests": total, "seconds": round(outcome.elapsed, 6),
                          "per_second": round(rate, 1),
                          "statuses": {f"0x{c:04X}": n for c, n in outcome.statuses.items()},
                          "error": outcome.error}))
    else:
        print(f"{name}: {total} requests in {outcome.elapsed:.3f}s ({rate:,.0f}/s): {counts}")
    return outcome.exit_code

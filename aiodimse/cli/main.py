"""Argument parsing and dispatch for the ``aiodimse`` command.

Each command module adds its sub-parser and sets ``run`` (a function or coroutine
function taking the parsed arguments and returning the exit status).
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import platform
import sys
import typing
from collections.abc import Sequence
from typing import Any

import pydicom

from .. import __version__
from ..logs import LOG_FORMATS, configure_logging
from . import commit, dimse_n, query_tools, serve, store_tool, ups_tool
from .checks import EXIT_USAGE
from .common import SettingError
from .demo import run_demo
from .loop import LOOPS, LoopUnavailableError
from .loop import run as run_on_loop

__all__ = ["main", "build_parser", "parse_args"]


async def _demo(args: argparse.Namespace) -> int:
    return await run_demo(port=args.port, count=args.count)


def version_line() -> str:
    """What ``--version`` prints: ours and what a bug report needs beside it."""
    return (f"aiodimse {__version__} (Python {platform.python_version()}, "
            f"pydicom {pydicom.__version__})")


class _Parser(argparse.ArgumentParser):
    """Usage errors exit ``EXIT_USAGE``, apart from the tools' outcome codes (0-3)."""

    def error(self, message: str) -> typing.NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aiodimse", description="asyncio DICOM networking")
    parser.add_argument("--version", action="version", version=version_line())
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    parser.add_argument("-d", "--debug", action="store_true", help="log at DEBUG")
    parser.add_argument("--loop", choices=LOOPS, default="auto",
                        help="event loop: uvloop when installed (auto, the default), "
                             "or asyncio's")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default=None,
                        help="log lines as text, or one JSON object per line (default "
                             "text; serve: also the TOML's log_format)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="start an SCP and talk to it: C-ECHO and N-ACTION")
    demo.add_argument("--port", type=int, default=0,
                      help="port to listen on (0: any free; default %(default)s)")
    demo.add_argument("--count", type=int, default=1000,
                      help="N-ACTION requests to send (default %(default)s)")
    demo.set_defaults(run=_demo)

    serve.add_parsers(sub)
    commit.add_parsers(sub)
    dimse_n.add_parsers(sub)
    store_tool.add_parsers(sub)
    query_tools.add_parsers(sub)
    ups_tool.add_parsers(sub)
    # -v/-d also after the command (and after ``ups``'s), as the field's tools take them
    for choice in [*sub.choices.values(), *ups_tool.subcommands(sub)]:
        choice.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                            help="log at INFO")
        choice.add_argument("-d", "--debug", action="store_true", default=argparse.SUPPRESS,
                            help="log at DEBUG")
        choice.add_argument("--loop", choices=LOOPS, default=argparse.SUPPRESS,
                            help="event loop: auto (uvloop when installed), asyncio, uvloop "
                                 "(default auto)")
        choice.add_argument("--log-format", choices=LOG_FORMATS, default=argparse.SUPPRESS,
                            help="text, or json: one JSON object per line (default text)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:  # a closed pipe shows here, not in the interpreter's last flush
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout went away (``aiodimse ... | head``): no traceback, and no second error
        # when the interpreter flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a process killed by it


def parse_args(argv: Sequence[str], parser: argparse.ArgumentParser | None = None
               ) -> argparse.Namespace:
    """The command line as ``aiodimse`` reads it (a usage error exits 2, as argparse's),
    with ``parser`` (``build_parser()``'s, built once by a caller that parses many:
    the documentation's tests read the pages' command lines with it)."""
    parser = parser or build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse takes all positionals at their first run, so in ``commit host port -aec X
    # FILE`` or ``n-set host port -i UID FILE`` FILE is left over: place it.
    if extra and not any(e.startswith("-") and e != "-" for e in extra):
        if hasattr(args, "paths"):
            args.paths, extra = [*args.paths, *extra], []
        elif getattr(args, "dataset", "") is None and len(extra) == 1:
            args.dataset, extra = extra[0], []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    if getattr(args, "quiet", False):
        level = logging.ERROR
    if args.command != "serve" and isinstance(getattr(args, "log_level", None), int):
        level = args.log_level  # the SCU tools' -ll (serve has its own --log-level)
    configure_logging(level, args.log_format, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    run = args.run
    try:
        if run is serve.run_serve:
            result: Any = serve.run_serve(args, argv)
        else:
            result = run(args)
        if inspect.iscoroutine(result):
            result = run_on_loop(result, args.loop)
    except (SettingError, LoopUnavailableError) as exc:
        print(f"aiodimse {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return int(result)

"""Argument parsing and dispatch for the ``aiodimse`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from .demo import run_demo
from .echo import run_echo

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiodimse", description="asyncio DICOM networking")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    parser.add_argument("-d", "--debug", action="store_true", help="log at DEBUG")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="start an SCP and talk to it: C-ECHO and N-ACTION")
    demo.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    demo.add_argument("--count", type=int, default=1000, help="N-ACTION requests to send")

    echo = sub.add_parser("echo", help="C-ECHO (verification) SCU")
    echo.add_argument("host")
    echo.add_argument("port", type=int)
    echo.add_argument("-aet", "--calling-aet", default="AIODIMSE")
    echo.add_argument("-aec", "--called-aet", default="ANY-SCP")
    echo.add_argument("--repeat", type=int, default=1)
    echo.add_argument("--timeout", type=float, default=30.0)
    echo.add_argument("--max-pdu", type=int, default=16382)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            return asyncio.run(run_demo(port=args.port, count=args.count))
        if args.command == "echo":
            return asyncio.run(
                run_echo(
                    args.host,
                    args.port,
                    calling=args.calling_aet,
                    called=args.called_aet,
                    repeat=args.repeat,
                    timeout=args.timeout,
                    max_pdu=args.max_pdu,
                )
            )
    except KeyboardInterrupt:
        return 130
    print(f"unknown command {args.command}", file=sys.stderr)  # pragma: no cover
    return 2

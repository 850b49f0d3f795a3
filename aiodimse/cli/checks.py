"""Checks for command-line values, as argparse ``type=`` functions.

Each raises ``argparse.ArgumentTypeError`` with a message that says what is wrong
and what is allowed, so that a bad value is one line of usage error (exit
``EXIT_USAGE``), never a traceback or a silently different setting.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ae import ae_title_problem

__all__ = [
    "EXIT_USAGE",
    "ae_title",
    "port",
    "listen_port",
    "positive_seconds",
    "max_pdu",
    "positive_int",
    "readable_file",
    "MAX_PDU_LEAST",
    "MAX_PDU_MOST",
    "log_level",
    "LOG_LEVELS",
]

EXIT_USAGE = 64
"""A usage error (a bad option or value): sysexits.h's EX_USAGE, apart from the
tools' DIMSE outcome codes 0-3."""


def ae_title(text: str) -> str:
    """An AE title per PS3.5 (AE VR): 1-16 characters of the default repertoire."""
    problem = ae_title_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text.strip()


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a whole number, not {text!r}") from None


def port(text: str) -> int:
    """A peer's TCP port: 1-65535."""
    value = _int(text, "a port")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, not {value}")
    return value


def listen_port(text: str) -> int:
    """A port to listen on: 0 (any free port) to 65535."""
    value = _int(text, "a port")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port to listen on is 0-65535, not {value}")
    return value


def positive_seconds(text: str) -> float:
    """A timeout or delay in seconds: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"seconds must be above 0, not {text}")
    return value


MAX_PDU_LEAST = 4096
"""The smallest Maximum Length we take (as DCMTK), other than 0 for no limit."""
MAX_PDU_MOST = 0xFFFFFFFF
"""The largest the 4-byte field holds (PS3.8 D.1)."""


def max_pdu(text: str) -> int:
    """A Maximum Length to receive (PS3.8 D.1): 0 (no limit) or 4096 bytes and up."""
    value = _int(text, "a maximum PDU length")
    if value != 0 and not MAX_PDU_LEAST <= value <= MAX_PDU_MOST:
        raise argparse.ArgumentTypeError(
            f"a maximum PDU length is 0 (no limit) or {MAX_PDU_LEAST} to {MAX_PDU_MOST} "
            f"bytes, not {value}")
    return value


def positive_int(text: str) -> int:
    """A count that must be at least 1."""
    value = _int(text, "a count")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def readable_file(text: str) -> str:
    """A file that exists and can be read (certificates, keys, CA bundles)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {exc.strerror}") from None
    return text


LOG_LEVELS = {"fatal": 50, "error": 40, "warn": 30, "warning": 30, "info": 20,
              "debug": 10, "trace": 5}
"""DCMTK's ``-ll`` names (and ``warning``) as logging levels; trace is below DEBUG."""


def log_level(text: str) -> int:
    """A DCMTK-style log level name, as a logging level."""
    level = LOG_LEVELS.get(text.lower())
    if level is None:
        raise argparse.ArgumentTypeError(
            f"a log level is one of {', '.join(n for n in LOG_LEVELS if n != 'warning')}, "
            f"not {text!r}")
    return level

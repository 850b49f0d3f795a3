"""Checks of a whole ``serve`` configuration, after the TOML file and the flags merged.

Every setting is checked against its declared type and, where one applies, its
range, and a bad one is a ``ConfigError`` that names it; nothing is silently
turned into something else (``port = 70000`` must not listen on 4464, ``port =
"abc"`` must not reach the resolver). Relative paths in a TOML file are read from
the file's folder, as a reader of the file expects.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..ae import ae_title_problem
from ..logs import LOG_FORMATS
from ..store import database_problem, lacking
from .checks import MAX_PDU_LEAST, MAX_PDU_MOST

__all__ = ["check_config", "resolve_paths", "PATH_KEYS", "NEEDED_BY"]

PATH_KEYS = ("data", "database", "index_dirs", "tls_cert", "tls_key", "tls_ca", "archive_dir")
"""Settings holding paths: relative ones in a TOML file are relative to the file."""

# name -> (lowest, highest) allowed; numbers not named here must be finite and >= 0
_RANGES: dict[str, tuple[float, float]] = {
    "port": (0, 65535),
    "metrics_port": (0, 65535),
    "max_pdu": (0, MAX_PDU_MOST),
    "workers": (1, 1024),
    "max_associations": (1, 1 << 20),
    "max_pending": (1, 1 << 20),
    "acse_timeout": (1e-3, math.inf),
    "dimse_timeout": (1e-3, math.inf),
    "network_timeout": (1e-3, math.inf),
    "connection_timeout": (1e-3, math.inf),
    "artim_timeout": (1e-3, math.inf),
    "summary_interval": (1e-3, math.inf),
    "ups_purge_interval": (1, math.inf),
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def resolve_paths(values: dict[str, Any], base: Path) -> None:
    """Make the relative paths among ``values`` (read from a TOML file) relative to
    ``base``, the file's folder."""
    for key in PATH_KEYS:
        value = values.get(key)
        if key == "database" and isinstance(value, str):
            values[key] = _resolve_database(value, base)
        elif isinstance(value, str):
            values[key] = str(base / value) if not Path(value).is_absolute() else value
        elif isinstance(value, list):
            values[key] = [str(base / v) if isinstance(v, str) and not Path(v).is_absolute()
                           else v for v in value]


def _resolve_database(url: str, base: Path) -> str:
    """A relative SQLite path (plain, or ``sqlite:///rel``) from ``base``; other URLs
    as they are."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path = url[len(prefix):]
        return url if Path(path).is_absolute() else prefix + str(base / path)
    if "://" in url or Path(url).is_absolute():
        return url
    return str(base / url)


def _type_problem(value: Any, annotation: Any) -> str | None:
    """Why ``value`` is not of the (simple) declared type, or None."""
    if isinstance(annotation, str):  # postponed annotations: only the simple ones
        annotation = {"int": int, "float": float, "str": str, "bool": bool, "Path": Path,
                      "str | None": str | None, "float | None": float | None,
                      "int | None": int | None}.get(annotation)
        if annotation is None:
            return None
    options = (typing.get_args(annotation)
               if isinstance(annotation, types.UnionType) else (annotation,))
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return None
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return None
        if option in (str, bool, Path) and isinstance(value, option):
            return None
    wanted = " or ".join(getattr(o, "__name__", str(o)) for o in options if o is not type(None))
    return f"must be {wanted.replace('float', 'a number').replace('int', 'a whole number')}" \
           f", not {value!r}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# The services each concern of the store interface is needed by: a backend that
# lacks the concern (its LACKING) refuses them.
NEEDED_BY: dict[str, tuple[str, ...]] = {"archive index": ("storage", "query_retrieve"),
                                          "ups workitems": ("ups",)}


def _lacking(database: str, services: Any) -> list[str]:
    """A problem per concern the backend lacks that an enabled service needs."""
    problems = []
    for concern in lacking(database):
        needing = [s for s in services if s in NEEDED_BY.get(concern, ())]
        if needing:
            problems.append(
                f"database: {database.partition('://')[0]} has no {concern} yet, "
                f"which the {' and '.join(needing)} "
                f"{'services need' if len(needing) > 1 else 'service needs'}: disable "
                f"{'them' if len(needing) > 1 else 'it'} ([services] or "
                "--disable-service)")
    return problems


def check_config(config: Any) -> list[str]:
    """Every problem of ``config`` (a ServeConfig), each naming its setting."""
    problems: list[str] = []
    for f in fields(config):
        value = getattr(config, f.name)
        problem = _type_problem(value, f.type)
        if problem is not None:
            problems.append(f"{f.name} {problem}")
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            low, high = _RANGES.get(f.name, (0, math.inf))
            if not math.isfinite(value) or not low <= value <= high:
                limit = (f"at least {_num(low)}" if high == math.inf
                         else f"{_num(low)} to {_num(high)}")
                problems.append(f"{f.name} must be {limit}, not {value!r}")
    max_pdu = getattr(config, "max_pdu", 0)
    if isinstance(max_pdu, int) and 0 < max_pdu < MAX_PDU_LEAST:
        problems.append(f"max_pdu must be 0 (no limit) or {MAX_PDU_LEAST} to {MAX_PDU_MOST}, "
                        f"not {max_pdu}")
    database = getattr(config, "database", None)
    if isinstance(database, str):
        why = database_problem(database)
        if why is not None:
            problems.append(f"database: {why}")
        else:
            problems += _lacking(database, getattr(config, "services", ()))
    metrics_port = getattr(config, "metrics_port", 0)
    if metrics_port and metrics_port == getattr(config, "port", 0):
        problems.append(f"metrics_port must differ from port, not {metrics_port!r}")
    level = str(getattr(config, "log_level", "INFO")).upper()
    if level not in _LOG_LEVELS:
        problems.append(f"log_level must be one of {', '.join(_LOG_LEVELS)}, not {level!r}")
    log_format = getattr(config, "log_format", "text")
    if log_format not in LOG_FORMATS:
        problems.append(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    duplicates = getattr(config, "duplicates", "replace")
    if duplicates not in ("replace", "keep"):
        problems.append(f"duplicates must be replace or keep, not {duplicates!r}")
    archive_dir = getattr(config, "archive_dir", None)
    if archive_dir is not None and not isinstance(archive_dir, Path):
        problems.append(f"archive must be a path, not {archive_dir!r}")
    for name, titles in (("ae_title", [config.ae_title]),
                         ("allowed_calling_aets", list(config.allowed_calling_aets)),
                         ("ae table ([ae.TITLE] / --peer)", list(config.ae_table))):
        for title in titles:
            why = ae_title_problem(str(title)) if isinstance(title, str) else "not text"
            if why is not None:
                problems.append(f"{name}: {title!r}: {why}")
    for title in getattr(config, "ups_status_aets", ()):
        if title not in config.ae_table:  # a report needs to know where to go
            problems.append(f"ups status_aets: {title!r} has no ae table entry ([ae.{title}])")
    for title, entry in config.ae_table.items():
        if not entry.host:
            problems.append(f"ae table entry {title!r}: no host")
        if not 1 <= entry.port <= 65535:
            problems.append(f"ae table entry {title!r}: port {entry.port} is not 1-65535")
    return problems

"""aiodimse's loggers: peer-supplied text cannot forge log lines or flood the log.

Every module takes its logger from :func:`get_logger`, which attaches one
:class:`PeerSafeFilter`. The filter works on the record once it is known to be
emitted (below the logger's level nothing is formatted):

- the message is formatted and every control character in it (C0, DEL, C1, and the
  Unicode line and paragraph separators) is written as a ``\\xNN``/``\\uNNNN`` escape,
  so that an AE title or UID holding CR/LF cannot start a line of its own; an
  attached traceback keeps its own line breaks but the exception's text is escaped
  the same way;
- the message is cut at ``MAX_MESSAGE`` characters (peers choose the lengths of UIDs
  and titles; the log's cost per event stays bounded);
- identical warnings (same logger, same text) within ``FOLD_WINDOW`` seconds are
  folded: the first is written, the next ones are counted, and the first one after
  the window says how many were left out. The text names the peer (address and AE
  title), so a flood from one peer folds without hiding another peer's warnings.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from types import TracebackType

__all__ = ["FOLD_WINDOW", "LOG_FORMATS", "MAX_MESSAGE", "JsonLineFormatter", "PeerSafeFilter",
           "configure_logging", "escape", "get_logger", "peer_of"]

MAX_MESSAGE = 2048  # characters of one message (a traceback comes on top, at DEBUG only)
FOLD_WINDOW = 10.0  # seconds during which identical warnings are counted, not written
_FOLD_ENTRIES = 1024  # distinct warnings remembered at most (then the table starts anew)

_ESCAPES: dict[int, str] = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
_KEEP_NEWLINE = {k: v for k, v in _ESCAPES.items() if k != 0x0A}


def escape(text: str) -> str:
    """``text`` with every control character written as an escape sequence."""
    return text.translate(_ESCAPES)


def peer_of(assoc: object) -> str:
    """``TITLE@address`` of an association's peer, for log lines (escaped later)."""
    peer = getattr(assoc, "acceptor" if getattr(assoc, "is_requestor", False) else "requestor",
                   None)
    title = getattr(peer, "ae_title", "") or "?"
    return f"{title}@{getattr(peer, 'address', '') or '?'}"


_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _format_traceback(exc_info: _ExcInfo) -> str:
    """The traceback as logging writes it, with the exceptions' own text escaped.

    Stack lines come from our source files; the "Type: message" parts may hold peer
    bytes, so their line breaks are escaped too (the final newline is dropped, as
    logging's formatter does).
    """
    chunks = []
    for chunk in traceback.TracebackException(*exc_info).format():
        if chunk.startswith(("  File ", "Traceback (", "\nDuring handling",
                             "\nThe above exception")):
            chunks.append(chunk.translate(_KEEP_NEWLINE))
        else:
            body = chunk[:-1] if chunk.endswith("\n") else chunk
            chunks.append(escape(body) + "\n")
    return "".join(chunks).rstrip("\n")


class PeerSafeFilter(logging.Filter):
    """Escapes, bounds and folds the records of one logger (see the module docstring)."""

    def __init__(self, window: float = FOLD_WINDOW) -> None:
        super().__init__()
        self.window = window
        self._lock = threading.Lock()
        # (logger, hash of the text) -> (window start, occurrences left out since): the
        # text's hash, not the text (peer-chosen, up to MAX_MESSAGE characters), so the
        # table is under 200 kB whatever peers send
        self._seen: dict[tuple[str, int], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string: let logging report it as usual
            return True
        if len(text) > MAX_MESSAGE:
            text = f"{text[:MAX_MESSAGE]}... ({len(text) - MAX_MESSAGE} more characters)"
        text = text.translate(_ESCAPES)
        if record.levelno >= logging.WARNING:
            folded = self._fold(record.name, text)
            if folded is None:
                return False
            text = folded
        record.msg, record.args = text, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = _format_traceback(record.exc_info)
        return True

    def _fold(self, name: str, text: str) -> str | None:
        """``text`` to write (with a count of those left out), or None to leave it out."""
        now = time.monotonic()
        key = (name, hash(text))
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.window:
                self._seen[key] = (seen[0], seen[1] + 1)
                return None
            if len(self._seen) >= _FOLD_ENTRIES:
                self._seen.clear()
            self._seen[key] = (now, 0)
        if seen is not None and seen[1]:
            return f"{text} (repeated {seen[1]} times in the last {now - seen[0]:.0f} s)"
        return text


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with aiodimse's :class:`PeerSafeFilter` attached once."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, PeerSafeFilter) for f in logger.filters):
        logger.addFilter(PeerSafeFilter())
    return logger


LOG_FORMATS = ("text", "json")


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line, for log shippers: time (UTC, ISO 8601), level,
    logger, process, message, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: int | str, log_format: str | None, text_format: str, *,
                      force: bool = False) -> None:
    """The root logger's level and one stderr handler, in ``text_format`` or, for
    ``log_format`` "json", :class:`JsonLineFormatter`."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLineFormatter() if log_format == "json"
                         else logging.Formatter(text_format))
    logging.basicConfig(level=level, handlers=[handler], force=force)

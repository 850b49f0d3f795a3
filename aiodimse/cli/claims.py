"""What one ``serve`` claims for itself: its data directory and its port.

``--workers`` listens with SO_REUSEPORT, with which a second server started on the
same port silently takes half the connections. So a server first locks its data
directory (an advisory lock that the kernel drops when the process dies, however it
dies) and probes its port with a plain bind before any of its own sockets listen;
either failing is one line naming who holds it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

__all__ = ["ClaimError", "DataDirLock", "probe_port", "who_listens"]

LOCK_NAME = "aiodimse.lock"


class ClaimError(RuntimeError):
    """The data directory or the port belongs to another process."""


class DataDirLock:
    """An exclusive lock on ``DIR/aiodimse.lock`` holding the owner's pid and port."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, port: int) -> None:
        """Take the lock or raise ClaimError naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 200, 0).decode("ascii", "replace").split()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            who = "another aiodimse serve"
            if holder:
                who = f"aiodimse serve pid {holder[0]}"
                if len(holder) > 1 and holder[1] != "0":
                    who += f" (port {holder[1]})"
            raise ClaimError(f"data directory {self.path.parent} is in use by {who}; "
                             f"stop it, or give this server its own --data") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {port}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def probe_port(host: str, port: int) -> None:
    """Raise ClaimError if something already listens on ``port``.

    A plain bind (SO_REUSEADDR as servers use, no SO_REUSEPORT) fails while any
    socket listens there, including a group of SO_REUSEPORT workers.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return  # another problem: the real bind reports it
            who = who_listens(port)
            raise ClaimError(f"port {port} is already in use"
                             + (f" by {who}" if who else "")
                             + "; stop that server or choose another --port") from None


def who_listens(port: int) -> str | None:
    """``pid N (command line)`` of a process listening on TCP ``port`` (Linux /proc;
    None where it cannot be told, e.g. another user's process)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                        text = cmd.replace(b"\0", b" ").decode("utf-8", "replace").strip()
                        return f"pid {pid} ({text[:120]})"
    return None

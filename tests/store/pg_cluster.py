"""A private PostgreSQL cluster for tests: initdb + pg_ctl in a temporary directory,
on a free loopback port, as an unprivileged user (PostgreSQL refuses root; CI runs
as root, so there a system user ``aiodimse-pg`` is made or reused and owns the
directory). Stopped and removed by ``stop``; ``pause``/``resume`` stop and start the
server on the same data and port (an outage)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

__all__ = ["PGCluster", "pg_bindir"]

USER = "aiodimse-pg"


def pg_bindir() -> Path | None:
    """Where initdb and pg_ctl are: ``pg_config --bindir``, else Debian's folders."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             check=False, timeout=30)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and os.access(Path(folder) / "initdb", os.X_OK) \
                and os.access(Path(folder) / "pg_ctl", os.X_OK):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PGCluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="aiodimse-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_user: list[str] = []
        self.options = ""  # more server options (``-c name=value ...``), e.g. a benchmark's
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(USER)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                                "/usr/sbin/nologin", USER], check=True, timeout=60)
            entry = pwd.getpwnam(USER)
            self.root.chmod(0o755)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self.as_user = ["runuser", "-u", USER, "--"]

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_user, *argv], check=True, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        self.resume()

    def resume(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   f"-c max_connections=200 {self.options}")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.root / "log"), "-w", "-t", "60", "start")

    def pause(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (sessions ended, a clean shutdown) or ``immediate``
        (killed, as by a crash: recovery from the WAL at the next start)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                  "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> None:
        self._run(str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", "-d", database, "-q", "-c", sql)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.pause()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

"""docs/getting-started.md's shell commands, run as written (the port and the
``aiodimse`` script aside): a literal reading gives a server that commits what
its archive holds, and what is indexed later."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli._serve import ServeProcess, free_port
from tests.docs._pages import ROOT, claim

PAGE = "docs/getting-started.md"
BLOCKS = [claim(PAGE, n, "test_the_page_as_written") for n in (1, 2, 3, 4)]


def shims(directory: Path) -> str:
    """A PATH on which ``python3`` and ``aiodimse`` are this test's Python and tree."""
    directory.mkdir()
    # scripts, not symlinks: a virtual environment's Python run through a link in
    # another folder does not find its pyvenv.cfg, and so not its packages
    for name, args in (("python3", ""), ("aiodimse", " -m aiodimse")):
        script = directory / name
        script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)}{args} "$@"\n')
        script.chmod(0o755)
    return f"{directory}:/usr/bin:/bin"


def run(command: str, cwd: Path, path: str) -> str:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": path, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, f"{command}\nexited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


class PageServe(ServeProcess):
    """``aiodimse serve`` started with the page's own command line."""

    def __init__(self, command: str, cwd: Path, path: str) -> None:
        super().__init__(cwd / "aiodimse-data", port=free_port())
        self.argv = shlex.split(command.replace("11112", str(self.port)))
        self.cwd, self.path = cwd, path

    def start(self) -> PageServe:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     env={"PATH": self.path, "PYTHONPATH": str(ROOT),
                                          "PYTHONUNBUFFERED": "1"})
        return self


async def test_the_page_as_written(tmp_path: Path) -> None:
    archive, serve, check, later = BLOCKS
    path = shims(tmp_path / "bin")
    run(archive, tmp_path, path)
    assert [p.name for p in (tmp_path / "archive").iterdir()] == ["CT_small.dcm"]
    server = PageServe(serve.strip(), tmp_path, path)
    server.start()
    port = str(server.port)
    try:
        await server.ready()
        out = run(check.replace("11112", port), tmp_path, path)
        assert "event type 1, 1 committed, 0 failed" in out
        out = run(later.replace("11112", port), tmp_path, path)
        assert "event type 1, 2 committed, 0 failed" in out
    finally:
        assert server.stop(signal.SIGTERM) == 0, server.log()

"""The ``aiodimse`` entry point: ``--version`` and a closed stdout (``| head``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pydicom
import pytest

import aiodimse
from aiodimse.cli import main as cli_main


def test_version_names_ours_python_and_pydicom() -> None:
    out = subprocess.run([sys.executable, "-m", "aiodimse", "--version"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith(f"aiodimse {aiodimse.__version__} ")
    assert f"pydicom {pydicom.__version__}" in out


def test_output_into_a_closed_pipe_is_exit_141_without_traceback() -> None:
    # a sub-command that prints far more than a pipe buffer holds, as `n-get --json |
    # head -1` can
    code = (
        "import sys\n"
        "from aiodimse.cli import main as m\n"
        "def chatty(argv):\n"
        "    for i in range(100000):\n"
        "        print('line', i)\n"
        "    return 0\n"
        "m._main = chatty\n"
        "sys.exit(m.main([]))\n"
    )
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-c", code], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(write)
    assert proc.returncode == 141
    assert "Traceback" not in proc.stderr
    assert "BrokenPipeError" not in proc.stderr


def test_keyboard_interrupt_is_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(argv: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "_main", interrupted)
    assert cli_main.main([]) == 130

"""``--loop``: uvloop when installed, asyncio's loop on request, a clear error without it."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from aiodimse.cli import loop as cli_loop
from aiodimse.cli import main as cli_main


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_runs_on_uvloop_when_installed() -> None:
    assert importlib.util.find_spec("uvloop") is not None  # the test extras install it
    assert cli_loop.chosen_loop("auto") == "uvloop"
    assert cli_loop.run(_loop_module(), "auto").startswith("uvloop")
    assert cli_loop.run(_loop_module(), "asyncio").startswith("asyncio")


def test_without_uvloop_auto_is_asyncio_and_uvloop_is_an_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvloop" else real(name, *a))
    assert cli_loop.chosen_loop("auto") == "asyncio"
    assert cli_loop.run(_loop_module(), "auto").startswith("asyncio")
    with pytest.raises(cli_loop.LoopUnavailableError, match="pip install"):
        cli_loop.chosen_loop("uvloop")


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_demo_runs_on_the_loop_asked_for(
        where: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []

    async def fake_demo(port: int, count: int) -> int:
        seen.append(await _loop_module())
        return 0

    monkeypatch.setattr(cli_main, "run_demo", fake_demo)
    argv = ["--loop", "asyncio", "demo"] if where == "before" else ["demo", "--loop", "asyncio"]
    assert cli_main.main(argv) == 0
    assert cli_main.main(["demo"]) == 0
    assert seen[0].startswith("asyncio") and seen[1].startswith("uvloop")

"""Fixtures: ``serve`` starts real ``aiodimse serve`` processes, all stopped in teardown."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from ._serve import ServeProcess

StartServe = Callable[..., ServeProcess]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[StartServe]:
    started: list[ServeProcess] = []

    def start(*extra: str, data: Path | None = None, port: int | None = None,
              wrap: Sequence[str] = ()) -> ServeProcess:
        proc = ServeProcess(data or tmp_path / "data", *extra, port=port, wrap=wrap).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop(signal.SIGKILL if proc.exited() else signal.SIGTERM)

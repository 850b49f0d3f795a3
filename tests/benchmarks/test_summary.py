"""benchmarks/summary.py: the README's table lines from a run's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import summary


def outcome(row: str, contender: str, rate: float, *, gen: float = 50.0,
            cpu: float = 20.0) -> dict[str, object]:
    return {
        "row": row,
        "contender": contender,
        "na": "",
        "runs": [{"rate": rate}],
        "summary": {"runs": 3, "rate": rate, "gen_cpu_pct": gen, "server_cpu_us_per_op": cpu},
    }


def run_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                outcomes: list[dict[str, object]]) -> list[str]:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"quick": False, "outcomes": outcomes}))
    assert summary.main([str(path)]) == 0
    return capsys.readouterr().out.splitlines()


def test_server_row_ratios_are_to_the_ceiling_of_the_same_loop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = run_summary(tmp_path, capsys, [
        outcome("3", "ceiling", 5000.0),
        outcome("3", "ceiling-uvloop", 8000.0, gen=95.0),
        outcome("3", "pynetdicom+nodelay", 150.0),
        outcome("3", "aiodimse", 4000.0),
        outcome("3", "aiodimse-uvloop", 4000.0),
    ])
    assert lines[0].startswith("| row |") and lines[1].startswith("| --- |")
    assert lines[2:] == [
        "| 3 associate + release | 5,000 | 150 | 4,000 (0.80x) | 4,000 (0.50x)"
        " | asyncio met, uvloop MISSED |"
    ]


def test_scu_rows_compare_with_the_raw_generator_and_rows_not_run_are_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = run_summary(tmp_path, capsys, [
        outcome("7b", "raw generator", 20000.0),
        outcome("7b", "pynetdicom SCU", 300.0),
        outcome("7b", "aiodimse SCU", 9000.0),
        outcome("7b", "aiodimse SCU uvloop", 12000.0),
    ])
    assert lines[2:] == [
        "| 7b our SCU vs raw generator, C-ECHO | 20,000 (generator) | 300 (SCU)"
        " | 9,000 (0.45x) | 12,000 (0.60x) | asyncio MISSED, uvloop met |"
    ]


def test_row_5_also_judges_cpu_per_operation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = run_summary(tmp_path, capsys, [
        outcome("5a", "ceiling", 20000.0, cpu=40.0),
        outcome("5a", "ceiling-uvloop", 30000.0, cpu=10.0),
        outcome("5a", "pynetdicom+nodelay", 400.0),
        outcome("5a", "aiodimse", 25000.0, cpu=30.0),
        outcome("5a", "aiodimse-uvloop", 24000.0, cpu=25.0),  # rate met, CPU/op 2.5x
    ])
    assert lines[2].endswith("| 24,000 (0.80x) | asyncio met, uvloop MISSED |")


def test_row_8_judges_cpu_against_the_same_server_without_the_reply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = run_summary(tmp_path, capsys, [
        outcome("8g", "ceiling", 10000.0, cpu=10.0),
        outcome("8g", "ceiling-uvloop", 12000.0, cpu=9.0),
        outcome("8g", "pynetdicom+nodelay", 300.0),
        outcome("8g", "aiodimse", 7000.0, cpu=60.0),
        outcome("8g", "aiodimse no reply", 8000.0, cpu=50.0),  # 1.2x, 0.70x: met
        outcome("8g", "aiodimse-uvloop", 6000.0, cpu=70.0),
        outcome("8g", "aiodimse-uvloop no reply", 8000.0, cpu=50.0),  # 1.4x: missed
    ])
    assert lines[2].endswith("| 6,000 (0.50x) | asyncio met, uvloop MISSED |")
    assert "| 8g N-GET 20 attributes, 1 association | 10 | 60 / 50 | 70 / 50 |" in lines

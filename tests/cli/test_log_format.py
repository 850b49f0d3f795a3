"""``--log-format json``: one JSON object per log line, for log shippers."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from aiodimse import AE
from aiodimse.cli.checks import EXIT_USAGE
from aiodimse.logs import JsonLineFormatter, get_logger

from ._serve import wait_for
from .conftest import StartServe

VERIFICATION = "1.2.840.10008.1.1"


def test_a_record_is_one_json_line_with_its_traceback() -> None:
    try:
        raise ValueError("disk on fire")
    except ValueError:
        record = logging.LogRecord("aiodimse.serve", logging.ERROR, __file__, 1,
                                   "peer %s said\n%s", ("CT1", "two lines"), sys.exc_info())
    line = JsonLineFormatter().format(record)
    assert "\n" not in line  # one line, whatever the message and traceback hold
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "aiodimse.serve"
    assert entry["message"] == "peer CT1 said\ntwo lines"
    assert entry["time"].endswith("Z") and entry["time"][10] == "T"
    assert "ValueError: disk on fire" in entry["exception"]


def test_peer_text_is_escaped_before_it_is_formatted() -> None:
    record = logging.LogRecord("aiodimse.x", logging.WARNING, __file__, 1, "%s",
                               ("EVIL\r\nforged",), None)
    for f in get_logger("aiodimse.association").filters:
        assert f.filter(record)  # type: ignore[union-attr]
    entry = json.loads(JsonLineFormatter().format(record))
    assert "\r" not in entry["message"] and "\n" not in entry["message"]


async def test_serve_writes_json_lines(serve: StartServe) -> None:
    proc = serve("--log-format", "json", "-aet", "ARCHIVE")
    await wait_for(lambda: '"serving ' in proc.log() or proc.exited(), 20, "serving")
    assert not proc.exited(), proc.log()
    scu = AE("CT1")
    scu.add_requested_context(VERIFICATION)
    async with scu.associate("127.0.0.1", proc.port, ae_title="ARCHIVE") as assoc:
        assert (await assoc.send_c_echo()).Status == 0
    await wait_for(lambda: "released" in proc.log(), 10, "the association's end line")
    entries = [json.loads(line) for line in proc.log().splitlines() if line.strip()]
    loggers = {e["logger"] for e in entries}
    assert {"aiodimse.serve", "aiodimse.association"} <= loggers
    assert any(e["message"].startswith("serving ARCHIVE") for e in entries)
    assert all(set(e) >= {"time", "level", "logger", "process", "message"} for e in entries)


def test_an_unknown_format_in_the_toml_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('[server]\nlog_format = "xml"\n')
    run = subprocess.run([sys.executable, "-m", "aiodimse", "serve", "--config", str(config),
                          "--data", str(tmp_path / "data")],
                         check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == EXIT_USAGE
    assert "log_format must be one of text, json, not 'xml'" in run.stderr
    assert "Traceback" not in run.stderr


def test_an_unknown_format_flag_is_a_usage_error() -> None:
    run = subprocess.run([sys.executable, "-m", "aiodimse", "--log-format", "xml", "demo"],
                         check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == EXIT_USAGE
    assert "invalid choice: 'xml'" in run.stderr

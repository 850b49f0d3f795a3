"""``aiodimse serve --otel`` (TOML ``otel``): spans exported as the OTEL_* variables say;
a missing SDK or an unusable exporter is one line and status 1."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from aiodimse import AE
from aiodimse.cli.config import ConfigError
from aiodimse.cli.main import main
from aiodimse.presentation import VERIFICATION

from ._config import serve_config as _config
from .conftest import StartServe


def test_off_by_default_on_by_flag_or_toml(tmp_path: Path) -> None:
    assert _config().otel is False
    assert _config("--otel").otel is True
    path = tmp_path / "serve.toml"
    path.write_text("[server]\notel = true\n")
    assert _config("--config", str(path)).otel is True
    path.write_text('[server]\notel = "yes"\n')
    with pytest.raises(ConfigError, match="otel"):
        _config("--config", str(path))


def test_without_the_sdk_one_line_and_status_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("opentelemetry", "opentelemetry.sdk", "opentelemetry.sdk.trace"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    data = tmp_path / "data"
    assert main(["serve", "--data", str(data), "--otel"]) == 1
    assert capsys.readouterr().err == ("aiodimse serve: --otel needs the OpenTelemetry SDK: "
                                       "pip install 'aiodimse[otel]'\n")
    assert not data.exists()


@pytest.mark.parametrize(("env", "message"), [
    ({"OTEL_TRACES_EXPORTER": "nosuch"},
     "OTEL_TRACES_EXPORTER: no exporter 'nosuch' (is its package installed?; "
     "OTEL_TRACES_EXPORTER=console prints spans instead)"),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
     "OTEL_EXPORTER_OTLP_PROTOCOL must be one of http/protobuf, grpc, not 'carrier-pigeon'"),
])
def test_unusable_exporter_one_line_and_status_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        env: dict[str, str], message: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["serve", "--data", str(tmp_path / "data"), "--port", "0", "--otel"]) == 1
    err = capsys.readouterr().err
    assert err == f"aiodimse serve: {message}\n"


async def test_spans_of_real_associations_reach_the_exporter(
        serve: StartServe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")  # JSON spans on stdout
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    srv = await serve("-aet", "ARCHIVE", "--otel").ready()
    ae = AE("CT1")
    ae.add_requested_context(VERIFICATION)
    async with ae.associate("127.0.0.1", srv.port, ae_title="ARCHIVE") as assoc:
        for _ in range(2):
            assert (await assoc.send_c_echo()).Status == 0
    assert srv.stop() == 0  # the batch is flushed as serve stops
    log = srv.log()
    assert "tracing: spans to ConsoleSpanExporter" in log
    spans = [json.loads(chunk) for chunk in _json_objects(log)]
    by_name: dict[str, list[dict[str, object]]] = {}
    for span in spans:
        by_name.setdefault(str(span["name"]), []).append(span)
    [association] = by_name["DICOM association"]
    echoes = by_name["C-ECHO"]
    assert len(echoes) == 2
    association_id = association["context"]["span_id"]  # type: ignore[index]
    assert all(e["parent_id"] == association_id for e in echoes)
    attributes = association["attributes"]
    assert attributes["dicom.calling_ae_title"] == "CT1"  # type: ignore[index]
    assert attributes["dicom.association.outcome"] == "released"  # type: ignore[index]
    resource = association["resource"]["attributes"]  # type: ignore[index]
    assert resource["service.name"] == "aiodimse"


def _json_objects(text: str) -> list[str]:
    """The console exporter's pretty-printed objects: from a line "{" to a line "}"."""
    objects, current = [], None
    for line in text.splitlines():
        if line == "{":
            current = [line]
        elif current is not None:
            current.append(line)
            if line == "}":
                objects.append("\n".join(current))
                current = None
    return objects

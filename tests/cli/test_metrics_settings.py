"""``metrics_port`` / ``metrics_host``: checked like every other setting; without
prometheus_client, one line and status 1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aiodimse.cli.config import ConfigError
from aiodimse.cli.main import main

from ._config import serve_config as _config
from ._config import serve_toml as _toml


def test_off_by_default_on_loopback_when_on(tmp_path: Path) -> None:
    config = _config()
    assert (config.metrics_port, config.metrics_host) == (0, "127.0.0.1")
    config = _toml(tmp_path, '[server]\nmetrics_port = 9464\nmetrics_host = "0.0.0.0"\n')
    assert (config.metrics_port, config.metrics_host) == (9464, "0.0.0.0")
    config = _config("--config", str(tmp_path / "serve.toml"), "--metrics-port", "9465",
                     "--metrics-host", "::1")  # flags win
    assert (config.metrics_port, config.metrics_host) == (9465, "::1")


@pytest.mark.parametrize(("text", "message"), [
    ("[server]\nmetrics_port = 70000\n", "metrics_port must be 0 to 65535, not 70000"),
    ('[server]\nmetrics_port = "abc"\n', "metrics_port must be a whole number, not 'abc'"),
    ("[server]\nmetrics_host = 1\n", "metrics_host must be str, not 1"),
    ("[server]\nport = 11112\nmetrics_port = 11112\n",
     "metrics_port must differ from port, not 11112"),
])
def test_bad_toml_values_are_refused_naming_the_setting(tmp_path: Path, text: str,
                                                        message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _toml(tmp_path, text)
    assert message in str(info.value)


def test_flag_out_of_range_exits_64(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    assert main(["serve", "--data", str(tmp_path), "--metrics-port", "-1"]) == 64
    err = capsys.readouterr().err
    assert err.strip() == "aiodimse serve: metrics_port must be 0 to 65535, not -1"


def test_without_prometheus_client_one_line_and_status_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    data = tmp_path / "data"
    assert main(["serve", "--data", str(data), "--metrics-port", "9464"]) == 1
    err = capsys.readouterr().err
    assert err == ("aiodimse serve: --metrics-port needs the prometheus_client library: "
                   "pip install 'aiodimse[metrics]'\n")
    assert not data.exists()  # refused before anything was made

"""Every ``serve`` setting checked by type and range, naming it; TOML paths from the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiodimse.cli.config import ConfigError

from ._config import serve_config as _config
from ._config import serve_toml as _toml


@pytest.mark.parametrize(("argv", "message"), [
    (["--port", "70000"], "port must be 0 to 65535, not 70000"),
    (["--port", "-1"], "port must be 0 to 65535, not -1"),
    (["--max-associations", "0"], "max_associations must be 1 to"),
    (["--timeout", "-1"], "acse_timeout must be at least 0.001, not -1.0"),
    (["--max-pdu", "-5"], "max_pdu must be 0 to 4294967295, not -5"),
    (["--max-pdu", "100"], "max_pdu must be 0 (no limit) or 4096"),
    (["-aet", "A" * 17], "ae_title: 'AAAAAAAAAAAAAAAAA': an AE title has at most 16"),
    (["-aet", "  "], "spaces only"),
    (["--allow", "BAD\\AE"], "allowed_calling_aets: 'BAD\\\\AE'"),
    (["--peer", "CT\\1@h:104"], "ae table"),
    (["--peer", "CT1@h:0"], "ae table entry 'CT1': port 0 is not 1-65535"),
    (["--log-level", "LOUD"], "log_level must be one of"),
    (["--rescan-interval", "-1"], "rescan_interval must be at least 0, not -1.0"),
    (["--rescan-interval", "inf"], "rescan_interval must be at least 0, not inf"),
])
def test_a_bad_flag_is_refused_naming_the_setting(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _config(*argv)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ('[server]\nport = "abc"\n', "port must be a whole number, not 'abc'"),
    ("[server]\nport = 1.5\n", "port must be a whole number, not 1.5"),
    ("[server]\nworkers = true\n", "workers must be a whole number, not True"),
    ("[limits]\nmax_pdu = -5\n", "max_pdu must be 0 to 4294967295, not -5"),
    ('[limits]\ndimse_timeout = "soon"\n', "dimse_timeout must be a number, not 'soon'"),
    ("[limits]\nnetwork_timeout = nan\n", "network_timeout must be at least"),
    ('[server]\nae_title = "ÄRCHIVE"\n', "printable ASCII"),
    ('[server]\nallowed_calling_aets = ["TOO_LONG_FOR_AN_AE"]\n', "at most 16"),
    ('[server]\nrequire_called_aet = "yes"\n', "require_called_aet must be bool"),
])
def test_a_bad_toml_value_is_refused_naming_the_setting(
        tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _toml(tmp_path, text)


def test_relative_toml_paths_are_read_from_the_files_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    monkeypatch.chdir(tmp_path)  # not the file's folder
    config = _toml(etc, '[server]\ndata = "data"\nindex_dirs = ["archive", "/abs"]\n'
                        '[tls]\ncert = "tls/c.pem"\nkey = "/k.pem"\n')
    assert config.data == etc / "data"
    assert config.index_dirs == (etc / "archive", Path("/abs"))
    assert (config.tls_cert, config.tls_key) == (str(etc / "tls" / "c.pem"), "/k.pem")
    flags = _config("--data", "here")  # flags stay relative to the working directory
    assert flags.data == Path("here")


def test_defaults_pass_every_check() -> None:
    config = _config()
    assert config.port == 11112


def test_rescan_interval_from_toml_and_flag(tmp_path: Path) -> None:
    assert _config().rescan_interval == 300.0
    assert _toml(tmp_path, "[server]\nrescan_interval = 0\n").rescan_interval == 0
    assert _config("--rescan-interval", "2.5").rescan_interval == 2.5
    with pytest.raises(ConfigError, match="rescan_interval must be a number, not 'x'"):
        _toml(tmp_path, '[server]\nrescan_interval = "x"\n')

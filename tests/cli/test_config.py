"""``aiodimse serve`` configuration: TOML, flags on top, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiodimse.cli.config import ConfigError, PeerEntry

from ._config import serve_config as _config


def test_defaults() -> None:
    config = _config()
    assert (config.ae_title, config.port, config.workers) == ("AIODIMSE", 11112, 1)
    assert config.ae_table == {}
    assert config.delivery.same_association


def test_toml_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(
        '[server]\nae_title = "ARCHIVE"\nport = 104\ndata = "/srv/data"\n'
        'index_dirs = ["/a"]\nallowed_calling_aets = ["CT1"]\nworkers = 3\n'
        "[limits]\nmax_associations = 7\nmax_pdu = 32768\ndimse_timeout = 5\n"
        "[commitment]\nretry_initial = 0.5\ndeadline = 60\n"
        '[ae.CT1]\nhost = "10.0.0.5"\nport = 11113\n'
    )
    config = _config("--config", str(path), "--port", "11112", "--index-dir", "/b",
                     "--allow", "MR1", "--peer", "MR1@mr.example:4006", "--timeout", "9")
    assert (config.ae_title, config.port, config.workers) == ("ARCHIVE", 11112, 3)
    assert config.data == Path("/srv/data")
    assert config.index_dirs == (Path("/a"), Path("/b"))
    assert config.allowed_calling_aets == ("CT1", "MR1")
    assert (config.max_associations, config.max_pdu) == (7, 32768)
    assert config.dimse_timeout == 9.0  # --timeout wins over the file
    assert (config.delivery.retry_initial, config.delivery.deadline) == (0.5, 60)
    assert config.ae_table == {"CT1": PeerEntry("10.0.0.5", 11113),
                               "MR1": PeerEntry("mr.example", 4006)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nportt = 1\n", "unknown key 'portt'"),
        ("[nope]\n", "unknown section"),
        ("[ae.X]\nhost = 'h'\n", "needs host and port"),
        ("[commitment]\nretry = 1\n", "unknown key 'retry'"),
        ("[server\n", "serve.toml"),
        ("[tls]\ncert = 'a.pem'\n", "both a certificate and a key"),
    ],
)
def test_bad_config(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        _config("--config", str(path))


def test_bad_peer_flag() -> None:
    with pytest.raises(ConfigError, match="TITLE@HOST:PORT"):
        _config("--peer", "nohost")

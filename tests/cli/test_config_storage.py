"""``serve``'s archive settings: ``[storage]`` archive, duplicates, fsync and their flags;
``[ups]`` retention of final workitems."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiodimse.cli.config import ConfigError

from ._config import serve_config, serve_toml


def test_defaults_put_the_archive_in_the_data_directory() -> None:
    config = serve_config("--data", "/var/lib/x")
    assert config.archive() == Path("/var/lib/x/archive")
    assert (config.duplicates, config.fsync) == ("replace", True)


def test_the_file_and_the_flags(tmp_path: Path) -> None:
    config = serve_toml(tmp_path, '[storage]\narchive = "arc"\nduplicates = "keep"\n'
                                  'fsync = false\n')
    assert config.archive() == tmp_path / "arc"  # relative to the file's folder
    assert (config.duplicates, config.fsync) == ("keep", False)
    flags = serve_config("--archive-dir", "/srv/a", "--duplicates", "keep")
    assert (flags.archive(), flags.duplicates) == (Path("/srv/a"), "keep")


@pytest.mark.parametrize(("text", "message"), [
    ('[storage]\nduplicates = "maybe"\n', "duplicates must be replace or keep"),
    ("[storage]\nfsync = 1\n", "fsync must be bool"),
    ("[storage]\narchive = 5\n", "archive must be a path"),
    ('[storage]\nfolder = "x"\n', "unknown key 'folder' in \\[storage\\]"),
])
def test_bad_values_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        serve_toml(tmp_path, text)


def test_an_unknown_duplicate_policy_flag_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        serve_config("--duplicates", "maybe")


def test_ups_retention(tmp_path: Path) -> None:
    defaults = serve_config()
    assert (defaults.ups_keep_final, defaults.ups_purge_interval) == (0.0, 3600.0)
    config = serve_toml(tmp_path, "[ups]\nkeep_final = 604800\npurge_interval = 600\n")
    assert (config.ups_keep_final, config.ups_purge_interval) == (604800, 600)
    for text, message in (("[ups]\nkeep_final = -1\n", "ups_keep_final must be at least 0"),
                          ("[ups]\npurge_interval = 0\n", "ups_purge_interval must be"),
                          ('[ups]\nkeep_final = "7d"\n', "ups_keep_final must be a number"),
                          ("[ups]\nkeep = 1\n", "unknown key 'keep' in \\[ups\\]")):
        with pytest.raises(ConfigError, match=message):
            serve_toml(tmp_path, text)


def test_ups_status_aets_need_an_ae_table_entry(tmp_path: Path) -> None:
    """CC.2.4.3's fallback list: each AE is one reports can be sent to."""
    assert serve_config().ups_status_aets == ()
    config = serve_toml(tmp_path, '[ups]\nstatus_aets = ["RIS"]\n\n'
                                  '[ae.RIS]\nhost = "127.0.0.1"\nport = 11113\n')
    assert config.ups_status_aets == ("RIS",)
    for text, message in (('[ups]\nstatus_aets = ["QA"]\n', "'QA' has no ae table entry"),
                          ('[ups]\nstatus_aets = "RIS"\n', "must be a list of AE titles")):
        with pytest.raises(ConfigError, match=message):
            serve_toml(tmp_path, text)

"""``aiodimse serve``'s slot limits and deadlines: the keys, the flags, a real process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aiodimse import AE, AssociationRejectedError
from aiodimse.cli.config import ConfigError

from ._config import serve_config as _config
from .conftest import StartServe


def test_defaults_keep_one_peer_from_every_slot() -> None:
    config = _config()
    assert config.max_associations_per_address < config.max_associations
    assert config.max_associations_per_ae < config.max_associations
    assert config.max_pending > config.max_associations  # a separate, larger limit
    assert (config.artim_timeout, config.message_timeout) == (30.0, 30.0)


def test_keys_and_flags(tmp_path: Path) -> None:
    toml = tmp_path / "serve.toml"
    toml.write_text(
        "[limits]\nmax_associations_per_address = 3\nmax_associations_per_ae = 4\n"
        "max_pending = 50\nmax_pending_per_address = 5\nartim_timeout = 7\n"
        "message_timeout = 0\n"
    )
    config = _config("--config", str(toml))
    assert (config.max_associations_per_address, config.max_associations_per_ae,
            config.max_pending, config.max_pending_per_address) == (3, 4, 50, 5)
    assert (config.artim_timeout, config.message_timeout) == (7, 0)
    flagged = _config("--config", str(toml), "--max-associations-per-address", "0",
                      "--max-associations-per-ae", "9", "--max-pending", "60",
                      "--max-pending-per-address", "6", "--artim-timeout", "2.5",
                      "--message-timeout", "12")
    assert (flagged.max_associations_per_address, flagged.max_associations_per_ae,
            flagged.max_pending, flagged.max_pending_per_address) == (0, 9, 60, 6)
    assert (flagged.artim_timeout, flagged.message_timeout) == (2.5, 12)
    assert _config("--timeout", "5").message_timeout == 5  # --timeout covers it too
    assert _config("--timeout", "5", "--message-timeout", "9").message_timeout == 9
    for bad in (("--max-pending", "0"), ("--artim-timeout", "0"),
                ("--max-associations-per-ae", "-1"), ("--message-timeout", "-1")):
        with pytest.raises(ConfigError):
            _config(*bad)


async def _echo(port: int, title: str) -> int:
    async with AE(title).associate("127.0.0.1", port, ae_title="AIODIMSE") as assoc:
        return int((await asyncio.wait_for(assoc.send_c_echo(), 10)).Status)


async def test_serve_applies_artim_and_the_per_ae_limit(serve: StartServe) -> None:
    srv = await serve("--timeout", "30", "--artim-timeout", "0.5",
                      "--max-associations-per-ae", "1").ready()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", srv.port), 10)
    try:
        # silent: closed by ARTIM (0.5 s), not by the 30 s ACSE timeout
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        writer.close()
    scu = AE("MODALITY")
    scu.add_requested_context("1.2.840.10008.1.1")
    async with scu.associate("127.0.0.1", srv.port, ae_title="AIODIMSE") as first:
        assert first.is_established
        with pytest.raises(AssociationRejectedError) as info:
            await asyncio.wait_for(scu.associate("127.0.0.1", srv.port, ae_title="AIODIMSE"),
                                   10)
        assert (info.value.result, info.value.source, info.value.reason) == (2, 3, 2)

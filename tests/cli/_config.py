"""``aiodimse serve``'s settings as the command line and a TOML file make them."""

from __future__ import annotations

from pathlib import Path

from aiodimse.cli.config import ServeConfig, build_config
from aiodimse.cli.main import build_parser

__all__ = ["serve_config", "serve_toml"]


def serve_config(*argv: str) -> ServeConfig:
    """The configuration ``aiodimse serve ARGV`` runs with."""
    return build_config(build_parser().parse_args(["serve", *argv]))


def serve_toml(tmp_path: Path, text: str) -> ServeConfig:
    """The configuration of ``aiodimse serve --config FILE``, FILE holding ``text``."""
    path = tmp_path / "serve.toml"
    path.write_text(text)
    return serve_config("--config", str(path))

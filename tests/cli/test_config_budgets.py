"""``aiodimse serve``: the memory limits from [limits] reach the AE (and have sane defaults)."""

from __future__ import annotations

from pathlib import Path

from aiodimse.cli.config import build_config
from aiodimse.cli.main import build_parser
from aiodimse.cli.serve import _build_ae


def test_memory_limits_from_toml_reach_the_ae(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text("[limits]\nmax_dataset_size = 1000000\nassociation_buffer = 2000000\n"
                    "server_buffer = 30000000\n")
    ae = _build_ae(build_config(build_parser().parse_args(["serve", "--config", str(path)])))
    assert (ae.maximum_dataset_size, ae.maximum_association_buffered,
            ae.maximum_server_buffered) == (1_000_000, 2_000_000, 30_000_000)


def test_serve_defaults_bound_memory() -> None:
    ae = _build_ae(build_config(build_parser().parse_args(["serve"])))
    assert ae.maximum_dataset_size <= 64 << 20
    assert ae.maximum_server_buffered <= 256 << 20
    assert ae.maximum_association_buffered <= ae.maximum_server_buffered

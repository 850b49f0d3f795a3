"""The reference pages that are written by hand say what the code does: the metric
table names exactly the metrics ``PrometheusObserver`` registers, with their types;
the deployment guide's configuration and unit file are accepted as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from aiodimse import evt
from aiodimse.cli.config import ConfigError, ServeConfig
from aiodimse.cli.main import build_parser
from aiodimse.prometheus import PrometheusObserver
from tests.cli._config import serve_toml

CLI = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def documented_metrics() -> dict[str, str]:
    """Metric name -> type, from docs/cli.md's table under "### Metrics"."""
    text = CLI.read_text()
    section = text[text.index("### Metrics"):text.index("### Tracing")]
    found: dict[str, str] = {}
    for row in re.findall(r"^\| (`aiodimse_.*?) \| (\w+) \|", section, re.M):
        names, kind = row
        for name in re.findall(r"`(aiodimse_\w+)`", names):
            found[name] = kind
    return found


def test_the_metric_table_is_the_registered_metrics() -> None:
    registry = CollectorRegistry()
    PrometheusObserver(registry)
    registered = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        registered[name] = family.type
    assert documented_metrics() == registered


DEPLOYMENT = CLI.parent / "deployment.md"


def block(page: Path, language: str) -> str:
    (found,) = re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.S | re.M)
    return str(found)


def test_the_deployment_configuration_is_accepted_as_written(tmp_path: Path) -> None:
    """serve.toml of docs/deployment.md loads (every key known, every value in range)
    and says what the page says of it; its TLS files are made where it names them."""
    (tmp_path / "tls").mkdir()
    for name in ("server.pem", "server.key", "ca.pem"):
        (tmp_path / "tls" / name).write_text("placeholder\n")
    config = serve_toml(tmp_path, block(DEPLOYMENT, "toml"))
    assert config.port == 104
    assert config.allowed_calling_aets == ("CT1", "MR1")
    assert config.require_called_aet
    assert set(config.ae_table) == {"CT1", "MR1"}
    assert config.tls_ca == str(tmp_path / "tls" / "ca.pem")


def test_the_systemd_unit_starts_serve_with_a_valid_command_line() -> None:
    unit = block(DEPLOYMENT, "ini")
    (exec_start,) = re.findall(r"^ExecStart=(\S+) (.*)$", unit, re.M)
    program, argv = exec_start
    assert program.endswith("/bin/aiodimse")
    args = build_parser().parse_args(argv.split())
    assert args.command == "serve" and args.config == "/etc/aiodimse/serve.toml"
    # stopping gracefully fits in systemd's patience, and a bad setting is not retried
    stop = float(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M)[1])  # type: ignore[index]
    assert stop > ServeConfig().shutdown_grace + 1
    assert "RestartPreventExitStatus=64" in unit


POSTGRESQL = CLI.parent / "postgresql.md"


def test_the_postgresql_configuration_is_accepted_as_written(tmp_path: Path) -> None:
    """docs/postgresql.md's serve.toml loads as written, with the archive services on
    (the PostgreSQL backend holds the archive index); without its [services] table
    it is refused, as the page's warning says (no UPS workitems there)."""
    text = block(POSTGRESQL, "toml")
    config = serve_toml(tmp_path, text)
    assert config.database is not None and config.database.startswith("postgresql://")
    assert {"storage", "query_retrieve"} <= set(config.services)
    assert "ups" not in config.services
    assert config.delivery.lease == 180
    assert set(config.ae_table) == {"CT1", "MR1"}
    without = re.sub(r"^\[services\]\n(?:.+\n)+?\n", "", text, flags=re.M)
    assert "[services]" not in without
    with pytest.raises(ConfigError, match="no ups workitems yet"):
        serve_toml(tmp_path, without)


def test_every_intervention_event_has_its_page() -> None:
    """docs/events/ has a page per event a handler answers, each in its toctree."""
    events = CLI.parent / "events"
    toctree = (events / "index.md").read_text()
    for event in evt.INTERVENTION_EVENTS:
        name = event.name.removeprefix("EVT_").lower().replace("_", "-")
        page = events / f"{name}.md"
        assert page.exists(), f"no page for {event.name}"
        assert page.read_text().startswith(f"# {event.name}\n"), page
        assert f"\n{name}\n" in toctree, f"{name} is not in docs/events/index.md"


def tutorial_command_lines() -> list[str]:
    """Each ``aiodimse ...`` command in the sh blocks of docs/tutorials/ (up to a
    ``)``, ``|``, ``&`` or ``>`` that ends it in the shell)."""
    found = []
    for page in sorted((CLI.parent / "tutorials").glob("*.md")):
        for code in re.findall(r"^```sh\n(.*?)^```", page.read_text(), re.S | re.M):
            for line in code.replace("\\\n", " ").splitlines():
                found += re.findall(r"(?:^|[\s(])(aiodimse [^)|&>]*)", line)
    return found


def test_the_tutorials_command_lines_parse() -> None:
    """The tools' options the tutorials use exist (the tools themselves run end to end
    in tests/cli, e.g. test_serve_ups_events.py for the UPS tutorial's sequence)."""
    lines = tutorial_command_lines()
    assert any(line.startswith("aiodimse ups watch") for line in lines)
    parser = build_parser()
    for line in lines:
        argv = shlex.split(line)[1:]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            raise AssertionError(f"{line!r} does not parse") from exc

"""The reference pages that are written by hand say what the code does: the metric
table names exactly the metrics ``PrometheusObserver`` registers, with their types;
the configuration files and the unit file of the pages are accepted as written."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from prometheus_client import CollectorRegistry

from aiodimse import evt
from aiodimse.cli.config import ServeConfig
from aiodimse.cli.main import build_parser, parse_args
from aiodimse.prometheus import PrometheusObserver
from tests.cli._config import serve_toml
from tests.docs._pages import claim

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


DEPLOYMENT_TOML = claim("docs/deployment.md", 1, "test_the_deployment_configuration_...")
DEPLOYMENT_UNIT = claim("docs/deployment.md", 2, "test_the_systemd_unit_starts_serve_...")
POSTGRESQL_TOML = claim("docs/postgresql.md", 2, "test_the_postgresql_configuration_...")
CLI_DATABASE_TOML = claim("docs/cli.md", 1, "test_the_cli_pages_configuration_...")
CLI_TOML = claim("docs/cli.md", 2, "test_the_cli_pages_configuration_...")


def test_the_deployment_configuration_is_accepted_as_written(tmp_path: Path) -> None:
    """serve.toml of docs/deployment.md loads (every key known, every value in range)
    and says what the page says of it; its TLS files are made where it names them."""
    (tmp_path / "tls").mkdir()
    for name in ("server.pem", "server.key", "ca.pem"):
        (tmp_path / "tls" / name).write_text("placeholder\n")
    config = serve_toml(tmp_path, DEPLOYMENT_TOML)
    assert config.port == 104
    assert config.allowed_calling_aets == ("CT1", "MR1")
    assert config.require_called_aet
    assert set(config.ae_table) == {"CT1", "MR1"}
    assert config.tls_ca == str(tmp_path / "tls" / "ca.pem")


def test_the_systemd_unit_starts_serve_with_a_valid_command_line() -> None:
    unit = DEPLOYMENT_UNIT
    (exec_start,) = re.findall(r"^ExecStart=(\S+) (.*)$", unit, re.M)
    program, argv = exec_start
    assert program.endswith("/bin/aiodimse")
    args = build_parser().parse_args(argv.split())
    assert args.command == "serve" and args.config == "/etc/aiodimse/serve.toml"
    # stopping gracefully fits in systemd's patience, and a bad setting is not retried
    stop = float(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M)[1])  # type: ignore[index]
    assert stop > ServeConfig().shutdown_grace + 1
    assert "RestartPreventExitStatus=64" in unit


def test_the_postgresql_configuration_is_accepted_as_written(tmp_path: Path) -> None:
    """docs/postgresql.md's serve.toml loads as written, with every service on (the
    PostgreSQL backend holds the archive index and the UPS workitems)."""
    text = POSTGRESQL_TOML
    config = serve_toml(tmp_path, text)
    assert config.database is not None and config.database.startswith("postgresql://")
    assert {"storage", "query_retrieve", "ups"} <= set(config.services)
    assert config.delivery.lease == 180
    assert set(config.ae_table) == {"CT1", "MR1"}


def test_the_cli_pages_configuration_is_accepted_as_written(tmp_path: Path) -> None:
    """docs/cli.md's serve.toml, every key, loads as written and says what its comments
    say; so does its one-line PostgreSQL example."""
    for name in ("server.pem", "server.key", "ca.pem"):
        (tmp_path / name).write_text("placeholder\n")
    config = serve_toml(tmp_path, CLI_TOML)
    assert config.port == 11112 and config.ae_title == "ARCHIVE"
    assert config.allowed_calling_aets == ("CT1", "MR1")
    assert config.ups_status_aets == ("RIS",)
    assert set(config.ae_table) == {"CT1", "RIS"}
    database = serve_toml(tmp_path, CLI_DATABASE_TOML).database
    assert database == "postgresql://aiodimse@db.example:5432/aiodimse"


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



def words_of(code: str) -> list[list[str]]:
    """The shell words of each command line of ``code`` (a quotation may span lines)."""
    lines, pending = [], ""
    for line in code.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(pending + line, posix=True, punctuation_chars=True)
        lexer.wordchars += "$@:,+%{}[]^!"
        try:
            lines.append(list(lexer))
        except ValueError:  # a quotation that goes on to the next line
            pending += line + "\n"
            continue
        pending = ""
    return lines


def command_lines() -> list[tuple[str, list[str]]]:
    """(page, argv) of each ``aiodimse COMMAND ...`` in the pages' sh blocks and the
    README's code: the words after the program (any folder before it), up to an
    operator of the shell."""
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    blocks = [(str(page.relative_to(CLI.parent)), code)
              for page in sorted(CLI.parent.rglob("*.md")) if "_build" not in page.parts
              for code in re.findall(r"^```sh\n(.*?)^```", page.read_text(), re.S | re.M)]
    readme = (CLI.parents[1] / "README.md").read_text()  # its code: indented 4 spaces
    blocks += [("README.md", code) for code in re.findall(r"^    (\S.*)$", readme, re.M)]
    found = []
    for page, code in blocks:
        for words in words_of(code):
            for n, word in enumerate(words[:-1]):
                if word.rsplit("/", 1)[-1] == "aiodimse" and words[n + 1] in sub.choices:
                    argv = []
                    for arg in words[n + 1:]:
                        if arg and all(c in "();<>|&" for c in arg):
                            break
                        argv.append(arg)
                    found.append((page, argv))
    return found


def test_the_pages_command_lines_parse() -> None:
    """The options the pages' sh blocks give the tools exist (the tools themselves run
    end to end in tests/cli, e.g. test_serve_ups_events.py for docs/tutorials/ups.md)."""
    lines = command_lines()
    pages = {page for page, _ in lines}
    assert {"getting-started.md", "tutorials/ups.md", "cli.md", "ups.md", "README.md"} <= pages
    parser = build_parser()
    for page, argv in lines:
        try:
            parse_args(argv, parser)
        except SystemExit as exc:
            raise AssertionError(f"{page}: aiodimse {shlex.join(argv)} does not parse") from exc


def test_the_conformance_statements_numbers_hold() -> None:
    """docs/conformance.md: each heading's number fits its depth, the table of
    contents lists the numbered sections of levels 1-2 in order, and every section
    number the text cites is a heading's (so a renumbering cannot leave one stale)."""
    text = (CLI.parent / "conformance.md").read_text()
    heads = re.findall(r"^(#{2,6}) (\d+(?:\.\d+)*) ", text, re.M)
    numbers = [number for _, number in heads]
    assert all(number.count(".") == len(level) - 2 for level, number in heads), heads
    assert len(set(numbers)) == len(numbers)
    toc = text[text.index("## 2 Table of Contents"):text.index("## 3 ")]
    assert re.findall(r"^ *- \[(\d[\d.]*) ", toc, re.M) == [
        number for level, number in heads if len(level) <= 3 and number != "2"]
    body = re.sub(r"^#+ .*$", "", text, flags=re.M)
    # a dotted number from 2 up not part of a UID, a version or "PS3.5 6.2"
    cited = set(re.findall(
        r"(?<![\w.])(?<!PS3\.\d )(?<!PS3\.\d\d )([2-9](?:\.\d+){1,4})(?![\w.]*\d)", body))
    assert "4.2.1.4.2" in cited
    assert cited <= set(numbers), cited - set(numbers)

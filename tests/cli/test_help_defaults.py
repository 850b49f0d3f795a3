"""``--help`` shows each option's default: the tools' own, and serve's built-in ones
(serve's flags default to None so that a TOML value shows through, so argparse alone
would show nothing)."""

from __future__ import annotations

import argparse
import re

import pytest

from aiodimse.cli.config import ServeConfig
from aiodimse.cli.main import build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"aiodimse": parser, **action.choices}


def _valued_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Options that take a value and may be left out (flags without one have none)."""
    return [a for a in parser._actions
            if a.option_strings and a.nargs != 0 and not a.required
            and a.help != argparse.SUPPRESS]


def _help_of(parser: argparse.ArgumentParser, option: str) -> str:
    """The help text ``--help`` prints for ``option`` (with %(default)s filled in)."""
    action = next(a for a in parser._actions if option in a.option_strings)
    return parser._get_formatter()._expand_help(action)


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_option_with_a_value_names_its_default(command: str) -> None:
    parser = _subparsers()[command]
    missing = [a.option_strings[-1] for a in _valued_options(parser)
               if "default" not in _help_of(parser, a.option_strings[-1])]
    assert missing == []
    assert "default" in parser.format_help()


@pytest.mark.parametrize(("option", "shown"), [
    ("--port", f"(default {ServeConfig().port})"),
    ("--host", "(default 0.0.0.0)"),
    ("--aet", "(default AIODIMSE)"),
    ("--data", "(default aiodimse-data)"),
    ("--max-associations", "(default 64)"),
    ("--max-pdu", "(default 16382)"),
    ("--max-associations-per-address", "(default 32)"),
    ("--max-pending", "(default 128)"),
    ("--artim-timeout", "(default 30 s)"),
    ("--message-timeout", "(default 30 s)"),
    ("--timeout", "(default 10, 30, 30 and 30 s)"),
    ("--retry-initial", "(default 2 s)"),
    ("--deadline", "(default 86400 s)"),
    ("--log-level", "(default INFO)"),
    ("--workers", "(default 1)"),
    ("--metrics-port", "(default 0)"),
    ("--metrics-host", "(default 127.0.0.1)"),
])
def test_serve_shows_the_built_in_defaults(option: str, shown: str) -> None:
    assert shown in _help_of(_subparsers()["serve"], option)


def test_serve_defaults_follow_the_configuration() -> None:
    """The help is made from ServeConfig's defaults, not written twice."""
    help_text = " ".join(_subparsers()["serve"].format_help().split())
    config = ServeConfig()
    for value in (config.max_pending_per_address, config.max_associations_per_ae):
        assert re.search(rf"\(default {value}\)", help_text)


@pytest.mark.parametrize(("command", "option", "shown"), [
    ("echo", "--repeat", "(default 1)"),
    ("echo", "--concurrency", "(default 1)"),
    ("echo", "--timeout", "(default 30.0)"),
    ("n-get", "--calling-aet", "(default AIODIMSE)"),
    ("commit", "--wait", "(default 60.0)"),
    ("commit", "--listen-host", "(default 0.0.0.0)"),
    ("demo", "--count", "(default 1000)"),
])
def test_tools_show_their_defaults(command: str, option: str, shown: str) -> None:
    assert shown in _help_of(_subparsers()[command], option)

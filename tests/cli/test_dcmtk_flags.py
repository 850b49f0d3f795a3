"""DCMTK's habits on the SCU tools: -to/-ta/-td, -pdu, -q, -ll."""

from __future__ import annotations

import logging

import pytest

from aiodimse.cli import main as cli_main
from aiodimse.cli.checks import EXIT_USAGE
from aiodimse.cli.common import make_ae
from aiodimse.cli.main import build_parser


def test_each_timeout_and_the_pdu_as_dcmtk_spells_them() -> None:
    args = build_parser().parse_args(
        ["echo", "127.0.0.1", "104", "--timeout", "9", "-to", "1", "-ta", "2", "-td", "3",
         "-pdu", "32768"])
    ae = make_ae(args, [])
    assert (ae.connection_timeout, ae.acse_timeout, ae.dimse_timeout) == (1.0, 2.0, 3.0)
    assert ae.maximum_pdu_size == 32768
    only = make_ae(build_parser().parse_args(["echo", "127.0.0.1", "104", "--timeout", "9",
                                              "-td", "3"]), [])
    assert (only.connection_timeout, only.acse_timeout, only.dimse_timeout) == (9.0, 9.0, 3.0)


@pytest.mark.parametrize(("flags", "level"), [
    ([], logging.WARNING), (["-q"], logging.ERROR), (["-ll", "debug"], logging.DEBUG),
    (["-ll", "trace"], 5), (["-ll", "INFO"], logging.INFO), (["-ll", "fatal"], logging.CRITICAL),
])
def test_quiet_and_log_level_set_the_root_level(
        flags: list[str], level: int, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def fake_basic_config(**kwargs: object) -> None:
        seen.append(int(kwargs["level"]))  # type: ignore[call-overload]

    async def no_echo(args: object) -> int:
        return 0

    monkeypatch.setattr(cli_main.logging, "basicConfig", fake_basic_config)
    parser = build_parser()
    args = parser.parse_args(["echo", "127.0.0.1", "104", *flags])
    monkeypatch.setattr(cli_main, "build_parser", lambda: _with_run(parser, no_echo))
    assert cli_main.main(["echo", "127.0.0.1", "104", *flags]) == 0
    assert seen == [level]
    assert args.quiet == ("-q" in flags)


def _with_run(parser: object, run: object) -> object:
    sub = next(a for a in parser._actions if a.dest == "command")  # type: ignore[attr-defined]
    sub.choices["echo"].set_defaults(run=run)
    return parser


def test_an_unknown_log_level_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["echo", "127.0.0.1", "104", "-ll", "loud"])
    assert info.value.code == EXIT_USAGE
    assert "a log level is one of fatal, error, warn, info, debug, trace" in capsys.readouterr().err

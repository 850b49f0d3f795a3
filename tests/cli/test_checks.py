"""Bad settings on the SCU tools: one line, exit 64 (usage), never a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aiodimse import AE
from aiodimse.ae import ae_title_problem
from aiodimse.cli.checks import EXIT_USAGE
from aiodimse.errors import AssociationRejectedError

BAD_TITLES = ["", "   ", "A" * 17, "BAD\\AE", "TAB\tAE", "CR\rLF\nAE", "ÜMLAUT", "NUL\x00"]


@pytest.mark.parametrize("title", BAD_TITLES)
def test_an_invalid_ae_title_is_refused_by_the_library(title: str) -> None:
    assert ae_title_problem(title) is not None
    with pytest.raises(ValueError, match="AE title"):
        AE(title)


@pytest.mark.parametrize("title", ["A", "ARCHIVE", " PADDED ", "A" * 16, "MY-SCU_1 (X)"])
def test_valid_ae_titles_are_kept_without_padding(title: str) -> None:
    assert ae_title_problem(title) is None
    assert AE(title).ae_title == title.strip(" ")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiodimse", *argv], capture_output=True,
                          text=True, timeout=60, check=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("argv", "words"), [
    (["-aet", "A" * 17], "at most 16"),
    (["-aet", "BAD\\AE"], "backslash"),
    (["-aet", "   "], "spaces only"),
    (["-aec", ""], "empty"),
    (["--timeout", "-1"], "above 0"),
    (["--timeout", "abc"], "expected seconds"),
    (["--max-pdu", "-5"], "maximum PDU length"),
    (["--repeat", "0"], "at least 1"),
    (["--tls-ca", "/nonexistent/ca.pem"], "no such file: /nonexistent/ca.pem"),
])
def test_a_bad_option_is_one_usage_line_and_exit_64(argv: list[str], words: str) -> None:
    proc = _run("echo", "127.0.0.1", "104", *argv)
    assert proc.returncode == EXIT_USAGE
    assert "Traceback" not in proc.stderr
    assert words in proc.stderr
    assert proc.stderr.splitlines()[0].startswith("usage: aiodimse echo")


@pytest.mark.parametrize("port", ["0", "70000", "99999", "abc"])
def test_a_port_out_of_range_is_a_usage_error(port: str) -> None:
    proc = _run("echo", "127.0.0.1", port)
    assert proc.returncode == EXIT_USAGE
    assert "port" in proc.stderr.splitlines()[-1]


def test_a_tls_key_without_its_certificate_is_named(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    proc = _run("echo", "127.0.0.1", "104", "--tls-key", str(key))
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.strip() == ("aiodimse echo: --tls-key needs --tls-cert "
                                   "(the certificate it belongs to)")


def test_a_certificate_without_a_key_names_the_file(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n")
    proc = _run("echo", "127.0.0.1", "104", "--tls-cert", str(cert))
    assert proc.returncode == EXIT_USAGE
    assert len(proc.stderr.strip().splitlines()) == 1
    assert str(cert) in proc.stderr and "--tls-key" in proc.stderr


def test_a_refused_connection_is_said_in_words() -> None:
    port = _closed_port()
    proc = _run("echo", "127.0.0.1", str(port))
    assert proc.returncode == 3
    assert proc.stderr.strip() == (f"aiodimse echo: cannot connect to 127.0.0.1:{port}: "
                                   "connection refused (is a DICOM server listening there?)")


def test_a_rejection_is_decoded_in_words() -> None:
    text = str(AssociationRejectedError(1, 1, 7))
    assert "rejected permanent / service user / called AE title not recognized" in text
    assert "(result 1, source 1, reason 7)" in text
    assert "local limit exceeded" in str(AssociationRejectedError(2, 3, 2))
    assert "reserved reason" in str(AssociationRejectedError(1, 1, 5))


def test_json_output_is_an_object_on_failure_too() -> None:
    port = _closed_port()
    proc = _run("echo", "127.0.0.1", str(port), "--json")
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert doc == {"error": f"cannot connect to 127.0.0.1:{port}: connection refused "
                            "(is a DICOM server listening there?)", "exit_status": 3}


def test_commit_listen_port_out_of_range_is_a_usage_error() -> None:
    proc = _run("commit", "127.0.0.1", "104", "-u", "1.2:1.3", "--listen-port", "70000")
    assert proc.returncode == EXIT_USAGE
    assert "a port to listen on is 0-65535, not 70000" in proc.stderr

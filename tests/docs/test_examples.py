"""Every example program of the documentation runs as written, against real servers
on loopback (``aiodimse serve`` started with the tutorial's own line, or the example
SCP), and prints what the pages say (their output blocks, compared line by line)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.cli._serve import CT, ServeProcess, free_port, write_instance
from tests.docs._pages import claim, shape
from tests.docs.test_getting_started import shims
from tests.docs.test_pages import LineServe

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
TIMEOUT = 60
TUTORIALS = "docs/tutorials"
SECOND = "test_commitment_report_on_a_second_association"
COMMITMENT_SERVE = claim(f"{TUTORIALS}/storage-commitment.md", 0, SECOND)
COMMITMENT_SCU = claim(f"{TUTORIALS}/storage-commitment.md", 1, SECOND)
OWN_SCP = claim(f"{TUTORIALS}/commitment-scp.md", 0, "test_commitment_scp_of_ones_own")
OWN_SCP_SCU = claim(f"{TUTORIALS}/commitment-scp.md", 1, "test_commitment_scp_of_ones_own")
MPPS_SERVE = claim(f"{TUTORIALS}/mpps.md", 0, "test_mpps_scu")
MPPS_SCU = claim(f"{TUTORIALS}/mpps.md", 1, "test_mpps_scu")
MPPS_OUTPUT = claim(f"{TUTORIALS}/mpps.md", 2, "test_mpps_scu")
UPS = "test_ups_performer_and_its_event_reports"
UPS_SERVE, UPS_SCU, UPS_OUTPUT, UPS_WATCH, UPS_STEPS, UPS_WATCHED = (
    claim(f"{TUTORIALS}/ups.md", n, UPS) for n in range(6))
TLS_RUN = claim(f"{TUTORIALS}/tls-identity.md", 0, "test_tls_and_user_identity")
TLS_OUTPUT = claim(f"{TUTORIALS}/tls-identity.md", 1, "test_tls_and_user_identity")
QR = "test_store_find_get_move_against_serve"
ARCHIVE_SERVE, ARCHIVE_SCU, ARCHIVE_OUTPUT = (
    claim(f"{TUTORIALS}/archive.md", n, QR) for n in range(3))
SCP = claim("docs/getting-started.md", 5, "test_scu_against_the_example_scp")
SCU = claim("docs/getting-started.md", 6, "test_scu_against_the_example_scp")


def with_ports(line: str, ports: dict[str, int]) -> str:
    for number, port in ports.items():
        line = line.replace(number, str(port))
    return line


def page_serve(line: str, cwd: Path, ports: dict[str, int]) -> LineServe:
    """``aiodimse serve`` as a tutorial's line starts it, on free ports."""
    return LineServe(shlex.split(with_ports(line, ports).replace("\\\n", " ")), cwd)


def python_line(line: str, ports: dict[str, int]) -> list[str]:
    """The argv of a page's ``python3 docs/examples/...`` line, for Popen."""
    words = shlex.split(with_ports(line, ports).replace("docs/examples/", f"{EXAMPLES}/"))
    assert words[0] == "python3"
    return [sys.executable, *words[1:]]


def shell_path(cwd: Path) -> str:
    """A PATH whose python3 and aiodimse are this test's (shims made once per folder)."""
    path = cwd / "bin"
    return f"{path}:/usr/bin:/bin" if path.exists() else shims(path)


def bash(command: str, cwd: Path, ports: dict[str, int]) -> subprocess.CompletedProcess[str]:
    """A tutorial's command line, in bash, from ``cwd``; the examples are the tree's."""
    command = with_ports(command, ports).replace("docs/examples/", f"{EXAMPLES}/")
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False,
                          env={"PATH": shell_path(cwd), "PYTHONPATH": str(ROOT)})


def run_example(name: str, *args: str, status: int = 0) -> str:
    """Run docs/examples/NAME with ARGS; its output, after checking its exit status."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
        timeout=TIMEOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == status, (
        f"{name} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for proc in started:
        proc.stop(signal.SIGKILL if proc.exited() else signal.SIGTERM)


def test_every_example_is_tested() -> None:
    tested = {"scp.py", "scu.py", "commitment_scu.py", "mpps_scu.py", "tls_identity.py",
              "archive_scu.py", "ups_scu.py", "commitment_scp.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_scu_against_the_example_scp(tmp_path: Path) -> None:
    """docs/getting-started.md's two example programs, as its lines run them."""
    ports = {"11112": free_port()}
    port = ports["11112"]
    scp = subprocess.Popen(python_line(SCP, ports),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT),
                                "PYTHONUNBUFFERED": "1"})
    try:
        assert scp.stdout is not None
        assert scp.stdout.readline().strip() == f"listening on port {port}"
        done = bash(SCU, tmp_path, ports)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines() == ["C-ECHO status 0x0000", "N-ACTION status 0x0000"]
    finally:
        scp.send_signal(signal.SIGINT)
        try:
            rest, _ = scp.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            scp.kill()
            scp.communicate()
            raise
    assert "N-ACTION from MY_SCU: 1 instance(s)" in rest
    assert scp.returncode == 0


async def test_commitment_report_on_a_second_association(
        tmp_path: Path, serve: list[ServeProcess]) -> None:
    """docs/tutorials/storage-commitment.md: serve's line, then the SCU's, as written."""
    files = [write_instance(tmp_path / "archive") for _ in range(3)]
    ports = {"11112": free_port(), "11113": free_port()}
    server = page_serve(COMMITMENT_SERVE, tmp_path, ports)
    serve.append(server.start())
    await server.ready()
    started = time.monotonic()
    done = bash(COMMITMENT_SCU, tmp_path, ports)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["N-ACTION status 0x0000",
                                        f"report: {len(files)} committed, 0 failed"]
    assert time.monotonic() - started < TIMEOUT


def test_commitment_scp_of_ones_own(tmp_path: Path) -> None:
    """docs/tutorials/commitment-scp.md: the library's SCP commits what its folder
    holds, reporting to the tutorial's SCU on a second association; a file it does
    not hold is failed."""
    for _ in range(2):  # "the two files of getting-started"
        write_instance(tmp_path / "archive")
    ports = {"11112": free_port(), "11113": free_port()}
    scp = subprocess.Popen(
        python_line(OWN_SCP, ports), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    try:
        assert scp.stdout is not None
        assert scp.stdout.readline().strip() == "indexed 2 instance(s)"
        assert scp.stdout.readline().strip() == f"listening on port {ports['11112']}"
        done = bash(OWN_SCP_SCU, tmp_path, ports)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines() == ["N-ACTION status 0x0000",
                                            "report: 2 committed, 0 failed"]
        missing = tmp_path / "elsewhere"
        files = [*(tmp_path / "archive").glob("*.dcm"),
                 missing / f"{write_instance(missing)}.dcm"]
        out = run_example("commitment_scu.py", "127.0.0.1", str(ports["11112"]),
                          str(ports["11113"]), *map(str, files), status=2)
        assert out.splitlines() == ["N-ACTION status 0x0000", "report: 2 committed, 1 failed"]
    finally:
        scp.send_signal(signal.SIGINT)
        try:
            scp.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            scp.kill()
            scp.communicate()
            raise
    assert scp.returncode == 0
    assert (tmp_path / "commitment.sqlite3").exists()  # beside the folder, as it says


async def test_mpps_scu(tmp_path: Path, serve: list[ServeProcess]) -> None:
    ports = {"11112": free_port()}
    server = page_serve(MPPS_SERVE, tmp_path, ports)
    serve.append(server.start())
    await server.ready()
    done = bash(MPPS_SCU, tmp_path, ports)
    assert done.returncode == 0, done.stdout + done.stderr
    assert shape(MPPS_OUTPUT).fullmatch(done.stdout), done.stdout


async def test_ups_performer_and_its_event_reports(
        tmp_path: Path, serve: list[ServeProcess]) -> None:
    ports = {"11112": free_port(), "11113": free_port()}
    listen = ports["11113"]
    server = page_serve(UPS_SERVE, tmp_path, ports)
    serve.append(server.start())
    await server.ready()
    done = bash(UPS_SCU, tmp_path, ports)
    assert done.returncode == 0, done.stdout + done.stderr
    assert shape(UPS_OUTPUT).fullmatch(done.stdout), done.stdout
    # each report came on an association serve opened to the listener
    assert f"association to MY_SCU@127.0.0.1:{listen} accepted" in server.log()
    # then the page's command-line part, as written (ports aside): the watch tool in
    # the background, the steps in a shell; the watch tool prints its 4 reports
    env = {"PATH": shell_path(tmp_path), "PYTHONPATH": str(ROOT)}
    watch = subprocess.Popen(
        ["bash", "-c", with_ports(UPS_WATCH, ports)], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # stderr: "listening ..."
    try:
        deadline = time.monotonic() + 20  # listening before the first report is queued
        while time.monotonic() < deadline and not _listening(listen):
            time.sleep(0.05)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", with_ports(UPS_STEPS, ports)],
                              env=env, capture_output=True, text=True, timeout=TIMEOUT,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Procedure Step State                CS: 'COMPLETED'" in done.stdout  # `get`
        printed, said = watch.communicate(timeout=TIMEOUT)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, printed + said
    uid = re.findall(r"instance=(\S+)", printed)[0]
    assert shape(UPS_WATCHED.replace("<uid>", uid)).fullmatch(printed), printed


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_tls_and_user_identity(tmp_path: Path) -> None:
    """docs/tutorials/tls-identity.md: the certificate, then the program, as written."""
    done = bash(TLS_RUN, tmp_path, {})
    assert done.returncode == 0, done.stdout + done.stderr
    assert shape(TLS_OUTPUT).fullmatch(done.stdout), done.stdout


def write_study(directory: Path, count: int) -> list[Path]:
    """``count`` CT instances of one study and series, as Part 10 files."""
    study, series = generate_uid(), generate_uid()
    paths = []
    for n in range(count):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CT, generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName, ds.Modality = "P1", "DOE^JANE", "CT"
        ds.InstanceNumber = n + 1
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        directory.mkdir(parents=True, exist_ok=True)
        paths.append(directory / f"{n}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


async def test_store_find_get_move_against_serve(
        tmp_path: Path, serve: list[ServeProcess]) -> None:
    files = write_study(tmp_path / "study", 3)
    ports = {"11112": free_port(), "11113": free_port()}
    server = page_serve(ARCHIVE_SERVE, tmp_path, ports)
    serve.append(server.start())
    await server.ready()
    done = bash(ARCHIVE_SCU, tmp_path, ports)
    assert done.returncode == 0, done.stdout + done.stderr
    assert shape(ARCHIVE_OUTPUT).fullmatch(done.stdout), done.stdout
    # the archive holds them where docs/archive.md says
    stored = sorted(p.name for p in (tmp_path / "aiodimse-data" / "archive").rglob("*.dcm"))
    assert stored == sorted(f"{dcmread(f).SOPInstanceUID}.dcm" for f in files)

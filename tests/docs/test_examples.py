"""Every example program of the documentation runs as written, against real servers
on loopback (``aiodimse serve``, or the example SCP), and prints what the pages say."""

from __future__ import annotations

import os
import re
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
from tests.docs.test_getting_started import shims

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
TIMEOUT = 60


def run_example(name: str, *args: str) -> str:
    """Run docs/examples/NAME with ARGS; its output, after checking it exited 0."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
        timeout=TIMEOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout}{done.stderr}"
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


def test_scu_against_the_example_scp() -> None:
    port = free_port()
    scp = subprocess.Popen([sys.executable, str(EXAMPLES / "scp.py"), str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT),
                                "PYTHONUNBUFFERED": "1"})
    try:
        assert scp.stdout is not None
        assert scp.stdout.readline().strip() == f"listening on port {port}"
        out = run_example("scu.py", "127.0.0.1", str(port))
        assert out.splitlines() == ["C-ECHO status 0x0000", "N-ACTION status 0x0000"]
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
    archive = tmp_path / "archive"
    files = [archive / f"{write_instance(archive)}.dcm" for _ in range(3)]
    missing = tmp_path / "elsewhere"
    files.append(missing / f"{write_instance(missing)}.dcm")  # not in the archive
    listen = free_port()
    server = ServeProcess(tmp_path / "data", "--index-dir", str(archive), "-aet", "ARCHIVE",
                          "--peer", f"MY_SCU@127.0.0.1:{listen}", "--retry-initial", "0.2")
    serve.append(server.start())
    await server.ready()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "commitment_scu.py"), "127.0.0.1", str(server.port),
         str(listen), *map(str, files)], capture_output=True, text=True, timeout=TIMEOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 2, done.stdout + done.stderr  # one instance failed
    assert done.stdout.splitlines() == ["N-ACTION status 0x0000",
                                        "report: 3 committed, 1 failed"]
    assert time.monotonic() - started < TIMEOUT
    assert f"association to MY_SCU@127.0.0.1:{listen} accepted" in server.log()


def test_commitment_scp_of_ones_own(tmp_path: Path) -> None:
    """docs/tutorials/commitment-scp.md: the library's SCP commits what its folder
    holds, reporting to the tutorial's SCU on a second association."""
    archive = tmp_path / "archive"
    files = [archive / f"{write_instance(archive)}.dcm" for _ in range(3)]
    missing = tmp_path / "elsewhere"
    files.append(missing / f"{write_instance(missing)}.dcm")
    port, listen = free_port(), free_port()
    scp = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "commitment_scp.py"), str(port), str(archive),
         f"MY_SCU@127.0.0.1:{listen}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    try:
        assert scp.stdout is not None
        assert scp.stdout.readline().strip() == "indexed 3 instance(s)"
        assert scp.stdout.readline().strip() == f"listening on port {port}"
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "commitment_scu.py"), "127.0.0.1", str(port),
             str(listen), *map(str, files)], capture_output=True, text=True,
            timeout=TIMEOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
        assert done.returncode == 2, done.stdout + done.stderr  # one instance failed
        assert done.stdout.splitlines() == ["N-ACTION status 0x0000",
                                            "report: 3 committed, 1 failed"]
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
    server = ServeProcess(tmp_path / "data", "-aet", "ARCHIVE")
    serve.append(server.start())
    await server.ready()
    lines = run_example("mpps_scu.py", "127.0.0.1", str(server.port)).splitlines()
    assert lines[0].startswith("N-CREATE 0x0000: step 1.2.")
    assert lines[1:] == ["N-SET 0x0000", "N-GET 0x0000: COMPLETED",
                         "N-SET after COMPLETED: 0x0110"]


async def test_ups_performer_and_its_event_reports(
        tmp_path: Path, serve: list[ServeProcess]) -> None:
    listen = free_port()
    server = ServeProcess(tmp_path / "data", "-aet", "ARCHIVE",
                          "--peer", f"MY_SCU@127.0.0.1:{listen}")
    serve.append(server.start())
    await server.ready()
    out = run_example("ups_scu.py", "127.0.0.1", str(server.port), str(listen))
    assert out.splitlines() == [
        "N-CREATE 0x0000: workitem created", "subscribe 0x0000", "claim 0x0000",
        "progress 0x0000", "final-state attributes 0x0000", "complete 0x0000",
        "report 1: UPS State Report: SCHEDULED", "report 2: UPS State Report: IN PROGRESS",
        "report 3: UPS Progress Report: 50% half way",
        "report 4: UPS State Report: COMPLETED", "unsubscribe 0x0000"]
    # each report came on an association serve opened to the listener
    assert f"association to MY_SCU@127.0.0.1:{listen} accepted" in server.log()
    # then the page's command-line part, as written (ports aside): the watch tool in
    # the background, the steps in a shell; the watch tool prints its 4 reports
    page = (ROOT / "docs" / "tutorials" / "ups.md").read_text()
    watch_cmd, steps = re.findall(r"```sh\n(.*?)```", page, re.S)[-2:]
    path = shims(tmp_path / "bin")
    env = {"PATH": path, "PYTHONPATH": str(ROOT)}
    watch = subprocess.Popen(
        ["bash", "-c", watch_cmd.replace("11113", str(listen))], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20  # listening before the first report is queued
        while time.monotonic() < deadline and not _listening(listen):
            time.sleep(0.05)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c",
                               steps.replace("11112", str(server.port))],
                              env=env, capture_output=True, text=True, timeout=TIMEOUT,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Procedure Step State                CS: 'COMPLETED'" in done.stdout  # `get`
        printed, _ = watch.communicate(timeout=TIMEOUT)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    states = re.findall(r"ProcedureStepState=(\w+(?: \w+)?)", printed)
    assert states == ["SCHEDULED", "IN PROGRESS", "COMPLETED"], printed
    assert printed.count("UPS Progress Report") == 1, printed


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_tls_and_user_identity(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(  # the command the example's docstring gives
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30)
    out = run_example("tls_identity.py", str(cert), str(key))
    assert out.splitlines() == [
        "alice over TLS: C-ECHO 0x0000",
        "wrong passcode: rejected (result 1, source 2, reason 1)",
    ]


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
    listen = free_port()
    server = ServeProcess(tmp_path / "data", "-aet", "ARCHIVE",
                          "--peer", f"MY_SCU@127.0.0.1:{listen}")
    serve.append(server.start())
    await server.ready()
    out = run_example("archive_scu.py", "127.0.0.1", str(server.port), str(listen),
                      *map(str, files))
    assert out.splitlines() == ["C-STORE: 3 of 3 stored",
                                "C-FIND: 1 studies, status 0x0000",
                                "C-GET: 3 of 3 received, status 0x0000",
                                "C-MOVE: 3 of 3 received, status 0x0000"]
    # the archive holds them where docs/archive.md says
    stored = sorted(p.name for p in (tmp_path / "data" / "archive").rglob("*.dcm"))
    assert stored == sorted(f"{dcmread(f).SOPInstanceUID}.dcm" for f in files)

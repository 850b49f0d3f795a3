"""The command lines of the reference pages, run as written against one real
``aiodimse serve`` per page, started with the page's own line, checking what the
page says they print and exit with.

Only what a test must change is changed, per block: the ports (free ones on
loopback), the hosts of the AE table (127.0.0.1) and the placeholders a reader
fills in (``/path/to/study/``, ``1.2.3``, ``UID``). The tools run in-process, in a
thread (each runs its own event loop): starting a Python per line would cost
seconds; ``serve`` and anything not ``aiodimse`` run as processes."""

from __future__ import annotations

import asyncio
import glob
import json
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from aiodimse import AE, Event, evt
from aiodimse.cli.main import main
from aiodimse.services import MPPS
from aiodimse.services import STORAGE_COMMITMENT as STGCMT
from tests.cli._serve import CT, ServeProcess, free_port, wait_for
from tests.docs._pages import ROOT, claim, shape
from tests.docs.test_getting_started import shims

ARCHIVE = claim("docs/archive.md", 0, "test_archive_page")
CLI_SERVE = claim("docs/cli.md", 0, "test_cli_page")
CLI_COMMIT = claim("docs/cli.md", 3, "test_cli_page")
CLI_COMMIT_OUTPUT = claim("docs/cli.md", 4, "test_cli_page")
CLI_QR = claim("docs/cli.md", 5, "test_cli_page")
CLI_SUBSCRIBE = claim("docs/cli.md", 6, "test_cli_page")
CLI_SCU = claim("docs/cli.md", 7, "test_cli_page")
UPS_TOOLS = claim("docs/ups.md", 0, "test_cli_page")
BACKUP = claim("docs/deployment.md", 4, "test_cli_page")
README_SERVE = claim("README.md", 2, "test_readme")
README_COMMIT = claim("README.md", 3, "test_readme")
README_STORE = claim("README.md", 4, "test_readme")
TIMEOUT = 30


@dataclass
class Ran:
    line: str
    status: int
    out: str
    err: str


@dataclass
class Shell:
    """Runs a block line by line as bash would for these lines: ``NAME=$(...)``,
    ``"$NAME"``, globs, ``\\`` continuations; ``aiodimse serve`` in the background."""

    cwd: Path
    capsys: pytest.CaptureFixture[str]
    variables: dict[str, str] = field(default_factory=dict)
    served: list[ServeProcess] = field(default_factory=list)

    async def run(self, code: str, subs: dict[str, str] | None = None) -> list[Ran]:
        for old, new in (subs or {}).items():
            code = re.sub(rf"(?<![\w./-]){re.escape(old)}(?![\w-]|\.\d)", new, code)
        return [await self.line(line) for line in code.replace("\\\n", " ").splitlines()
                if line.strip()]

    async def line(self, line: str) -> Ran:
        assign = re.fullmatch(r"(\w+)=\$\((.*)\)", line.strip())
        command = assign[2] if assign else line
        command = re.sub(r"\$(\w+)", lambda m: self.variables[m[1]], command)
        words = []
        for word in shlex.split(command, comments=True):
            matched = sorted(glob.glob(word, root_dir=self.cwd)) if "*" in word else []
            words += matched or [word]
        if words[0] != "aiodimse":
            done = await asyncio.to_thread(
                subprocess.run, ["bash", "-c", command], cwd=self.cwd, capture_output=True,
                text=True, timeout=TIMEOUT, check=False)
            ran = Ran(line, done.returncode, done.stdout, done.stderr)
        elif words[1] == "serve":
            self.served.append(await LineServe(words, self.cwd).start().ready())
            ran = Ran(line, 0, "", "")
        else:
            assert not {"&&", "||", "|", ";", ">", "<"} & set(words), f"bash's: {line}"
            self.capsys.readouterr()
            status = await asyncio.wait_for(
                asyncio.to_thread(main, words[1:]), TIMEOUT)
            out, err = self.capsys.readouterr()
            ran = Ran(line, status, out, err)
        if assign:
            self.variables[assign[1]] = ran.out.strip()
        return ran


class LineServe(ServeProcess):
    """``aiodimse serve`` with the words of a page's line, in ``cwd``."""

    def __init__(self, words: list[str], cwd: Path) -> None:
        port = int(words[words.index("--port") + 1])
        super().__init__(cwd / "aiodimse-data", port=port)
        self.words, self.cwd = words, cwd

    def start(self) -> LineServe:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        argv = [sys.executable, "-m", *self.words]
        self.proc = subprocess.Popen(argv, cwd=self.cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     env={"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
                                          "PATH": "/usr/bin:/bin"})
        return self


@dataclass
class Viewer:
    """A peer on loopback: a C-MOVE destination, and a commitment requester's
    listener for N-EVENT-REPORT."""

    stored: list[str] = field(default_factory=list)
    reports: list[tuple[int, str]] = field(default_factory=list)
    port: int = 0


@pytest.fixture
async def viewer() -> AsyncIterator[Viewer]:
    seen = Viewer()
    ae = AE("VIEWER")
    ae.add_supported_context(CT)
    ae.add_supported_context(STGCMT, scp_role=True)

    async def on_store(event: Event) -> int:
        seen.stored.append(event.dataset.SOPInstanceUID)
        return 0x0000

    async def on_report(event: Event) -> tuple[int, None]:
        seen.reports.append((event.event_type, event.event_information.TransactionUID))
        return 0x0000, None

    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=[
        (evt.EVT_C_STORE, on_store), (evt.EVT_N_EVENT_REPORT, on_report)])
    seen.port = server.port
    async with server:
        yield seen


@pytest.fixture
async def shell(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Shell]:
    monkeypatch.chdir(tmp_path)  # the in-process tools' relative paths
    ran = Shell(tmp_path, capsys)
    try:
        yield ran
    finally:
        for server in ran.served:
            assert server.stop() == 0, server.log()


def write_study(directory: Path, count: int, name: str = "DOE^JANE",
                patient: str = "P1") -> tuple[str, str, list[Path]]:
    """``count`` CT instances of a new study and series; (study, series, files)."""
    study, series = str(generate_uid()), str(generate_uid())
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for n in range(count):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CT, generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName, ds.Modality = patient, name, "CT"
        ds.InstanceNumber = n + 1
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        files.append(directory / f"{ds.SOPInstanceUID}.dcm")
        ds.save_as(files[-1], enforce_file_format=True)
    return study, series, files


def uids(files: list[Path]) -> list[str]:
    return sorted(str(dcmread(f).SOPInstanceUID) for f in files)


async def test_archive_page(shell: Shell, viewer: Viewer) -> None:
    """docs/archive.md: serve, store a study, find it, move it to VIEWER."""
    study, _, files = write_study(shell.cwd / "study", 3)
    port = free_port()
    _, store, find, move = await shell.run(ARCHIVE, {
        "11112": str(port), "10.0.0.7:104": f"127.0.0.1:{viewer.port}",
        "/path/to/study/": "study/", "1.2.3": study})
    assert store.status == 0, store
    assert "stored 3, failed 0" in store.out
    assert find.status == 0, find
    assert find.out.count(study) == 1 and "DOE^JANE" in find.out
    assert "C-FIND: 1 matches, status 0x0000" in find.out
    assert move.status == 0, move
    assert "completed 3, failed 0" in move.out
    assert sorted(viewer.stored) == uids(files)


async def test_cli_page(shell: Shell, viewer: Viewer, tmp_path: Path) -> None:
    """docs/cli.md's blocks against its serve line, then docs/ups.md's tools and the
    backup of docs/deployment.md against the same server."""
    study, series, files = write_study(tmp_path / "study", 3)
    indexed = tmp_path / "srv" / "dicom"
    indexed.mkdir(parents=True)
    for file in files[:2]:  # the third is not in the index: commitment fails it
        (indexed / file.name).write_bytes(file.read_bytes())
    port, ct1, ris = free_port(), free_port(), free_port()
    await shell.run(CLI_SERVE, {
        "11112": str(port), "/srv/dicom": str(indexed), "10.0.0.5:11113": f"127.0.0.1:{ct1}",
        "10.0.0.7:104": f"127.0.0.1:{viewer.port}", "10.0.0.9:11113": f"127.0.0.1:{ris}"})
    server = shell.served[0]
    subscribe_lines, watch_line = CLI_SUBSCRIBE.rsplit("\n", 2)[0], CLI_SUBSCRIBE.splitlines()[-1]
    watch = subprocess.Popen(
        ["bash", "-c", watch_line.replace("11113", str(ris))], cwd=tmp_path,
        env={"PATH": shims(tmp_path / "bin"), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await wait_for(lambda: "index scan done" in server.log(), TIMEOUT, "the index scan")
        ports = {"11112": str(port)}

        # Request storage commitment: 2 of the 3 instances of study/ are indexed
        same, one, listen = await shell.run(CLI_COMMIT, {
            **ports, "11113": str(ct1), "/path/to/study/": "study/"})
        assert same.status == 1, same  # some failed
        assert shape(CLI_COMMIT_OUTPUT).fullmatch(same.out), same.out
        assert one.status == 1 and "event type 2, 0 committed, 1 failed" in one.out, one
        assert "failed    1.2.840.10008.5.1.4.1.1.2 1.2.3.4 0x0112" in one.out
        assert listen.status == 1 and "2 committed, 1 failed" in listen.out, listen

        # Store, find, get and move
        write_study(tmp_path / "studies", 2, "DOE^JOHN", "P2")
        (tmp_path / "more.dcm").write_bytes(files[2].read_bytes())
        store, find, patients, get, move = await shell.run(CLI_QR, {
            **ports, "/path/to/studies/": "studies/", "1.2.3": study, "1.2.3.4": series})
        assert store.status == 0, store
        assert store.out.startswith("stored 3, failed 0, skipped 0\n"), store.out
        assert "event type 1, 3 committed, 0 failed" in store.out
        assert find.status == 0 and "C-FIND: 2 matches, status 0x0000" in find.out, find
        assert "DOE^JANE" in find.out and "DOE^JOHN" in find.out
        assert patients.status == 0, patients
        found = json.loads(patients.out)
        assert found["status"] == 0
        assert sorted(m["00100020"]["Value"][0] for m in found["matches"]) == ["P1", "P2"]
        assert get.status == 0 and "completed 3, failed 0" in get.out, get
        assert sorted(p.stem for p in (tmp_path / "got").glob("*.dcm")) == uids(files)
        assert move.status == 0 and "completed 3, failed 0" in move.out, move
        assert sorted(viewer.stored) == uids(files)

        # docs/ups.md's tools, as written
        ran = await shell.run(UPS_TOOLS, ports)
        assert [r.status for r in ran] == [0] * len(ran), ran
        assert "C-FIND: 1 workitems" in ran[1].out
        got = json.loads(ran[5].out)
        assert got["reply"]["00741000"]["Value"] == ["COMPLETED"], ran[5].out
        assert "UPS CANCEL status 0x0000" in ran[7].out
        other = shell.variables["other"]

        # UPS subscriptions, received by the watch tool started above
        await wait_for(lambda: watch.poll() is not None or _listening(ris), TIMEOUT,
                       "ups watch to listen")
        await shell.run(f"item=$(aiodimse ups create 127.0.0.1 {port} -aec ARCHIVE)")
        item = shell.variables["item"]
        ran = await shell.run(subscribe_lines, {**ports, "WORKITEM_UID": item})
        assert [r.status for r in ran] == [0] * 5, ran
        assert all("status 0x0000 (Success)" in r.out for r in ran)

        # The SCU tools
        mpps = Dataset()
        mpps.PerformedProcedureStepStatus = "IN PROGRESS"
        mpps.PatientID = "P1"
        (tmp_path / "mpps.json").write_text(mpps.to_json())
        request = Dataset()
        request.TransactionUID = generate_uid()
        request.ReferencedSOPSequence = [Dataset()]
        request.ReferencedSOPSequence[0].ReferencedSOPClassUID = CT
        request.ReferencedSOPSequence[0].ReferencedSOPInstanceUID = dcmread(files[0]).SOPInstanceUID
        request.save_as(tmp_path / "request.dcm", implicit_vr=True, little_endian=True)
        report = Dataset()
        report.TransactionUID = generate_uid()
        (tmp_path / "report.json").write_text(report.to_json())
        echo, create = await shell.run("\n".join(CLI_SCU.splitlines()[:2]), ports)
        assert echo.status == 0 and "ECHO status 0x0000" in echo.out, echo
        assert create.status == 0, create
        mpps_uid = re.findall(r"^Affected SOP Instance UID: (\S+)$", create.out, re.M)[0]
        n_set, n_get, n_action, n_delete, n_event, repeat = await shell.run(
            "\n".join(CLI_SCU.splitlines()[2:]),
            {**ports, "UID": mpps_uid, "CLASS": MPPS, "11113": str(viewer.port)})
        assert n_set.status == 0, n_set
        assert n_get.status == 0, n_get
        reply = json.loads(n_get.out)["reply"]
        assert reply["00400252"]["Value"] == ["COMPLETED"] and "00100020" in reply
        assert n_action.status == 0 and "N-ACTION status 0x0000" in n_action.out, n_action
        assert n_delete.status == 2, n_delete  # serve takes no N-DELETE (conformance.md)
        assert n_event.status == 0, n_event
        assert viewer.reports == [(1, report.TransactionUID)]
        assert repeat.status == 0 and "ECHO: 10000 requests" in repeat.out, repeat

        # docs/deployment.md: the backup, while the server runs
        (backup,) = await shell.run(BACKUP, {
            "/var/lib/aiodimse": str(tmp_path / "aiodimse-data"),
            "/var/backups": str(tmp_path)})
        assert backup.status == 0, backup
        (copy,) = tmp_path.glob("aiodimse-????-??-??.sqlite3")
        live = tmp_path / "aiodimse-data" / "aiodimse.sqlite3"
        tables = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        with sqlite3.connect(copy) as db, sqlite3.connect(live) as source:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute(tables).fetchall() == source.execute(tables).fetchall()
    finally:
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=TIMEOUT)
    assert watch.returncode == 0, err
    reports = [json.loads(line) for line in out.splitlines()]
    assert reports[0]["instance"] == item, out  # subscribing sends the state at once
    assert reports[0]["information"]["00741000"]["Value"] == ["SCHEDULED"]
    assert {r["event"] for r in reports} == {"UPS State Report"}
    assert {r["calling_aet"] for r in reports} == {"ARCHIVE"}
    # the global subscription tells of the other workitems: ups.md's cancelled one too
    assert any(r["instance"] == other and r["information"]["00741000"]["Value"] == ["CANCELED"]
               for r in reports), out


async def test_readme(shell: Shell, tmp_path: Path) -> None:
    """The README's commands, in its order: files first, the server, commitment of
    them (all committed, since they were indexed at start), then more sent and found."""
    _, _, some = write_study(tmp_path / "some", 2)
    write_study(tmp_path / "more", 2, "ROE^RICHARD", "P9")
    subs = {".venv/bin/aiodimse": "aiodimse", "11112": str(free_port()),
            "/path/to/some/*.dcm": "some/*.dcm", "/path/to/more/*.dcm": "more/*.dcm"}
    copied, _ = await shell.run(README_SERVE, subs)
    assert copied.status == 0 and uids(list((tmp_path / "archive").iterdir())) == uids(some)
    await wait_for(lambda: "index scan done" in shell.served[0].log(), TIMEOUT, "the scan")
    (commit,) = await shell.run(README_COMMIT, subs)
    assert commit.status == 0, commit
    assert "event type 1, 2 committed, 0 failed" in commit.out
    store, find = await shell.run(README_STORE, subs)
    assert store.status == 0 and store.out.startswith("stored 2, failed 0"), store
    assert find.status == 0 and "C-FIND: 2 matches" in find.out, find
    assert "ROE^RICHARD" in find.out and "DOE^JANE" in find.out


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


"""``aiodimse ups ...`` end to end against a real ``aiodimse serve`` (UPS on by
default): the lifecycle, the lock, cancels, exit statuses, and a restart that keeps
the workitems."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ._serve import free_port
from .conftest import StartServe


def ups(port: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aiodimse", "ups", argv[0], "127.0.0.1", str(port),
         "-aec", "AIODIMSE", *argv[1:]],
        capture_output=True, text=True, timeout=60, check=False)


def _state(port: int, uid: str) -> str:
    got = ups(port, "get", uid, "-t", "ProcedureStepState", "--json")
    assert got.returncode == 0, got.stderr
    return str(json.loads(got.stdout)["reply"]["00741000"]["Value"][0])


async def test_the_workitem_lifecycle_with_the_tools(serve: StartServe, tmp_path: Path) -> None:
    srv = await serve().ready()
    assert "ups)" in srv.log()  # on by default
    created = ups(srv.port, "create", "-k", "PatientID=P9", "-k", "PatientName=Doe^J",
                  "--label", "segmentation")
    assert created.returncode == 0, created.stderr
    uid = created.stdout.strip()
    assert uid and "\n" not in uid

    found = ups(srv.port, "find", "-k", "PatientID=P9", "-k", "ProcedureStepLabel",
                "-k", "SOPInstanceUID", "--json")
    assert found.returncode == 0, found.stderr
    (match,) = json.loads(found.stdout)["matches"]
    assert match["00080018"]["Value"] == [uid]
    assert match["00741204"]["Value"] == ["segmentation"]
    text = ups(srv.port, "find")  # the default keys, pydicom's text
    assert text.returncode == 0 and "1 workitems" in text.stdout and uid in text.stdout

    claimed = ups(srv.port, "claim", uid, "--json")
    assert claimed.returncode == 0, claimed.stderr
    lock = json.loads(claimed.stdout)["transaction_uid"]
    assert lock.startswith("1.2.826.0.1.3680043.10.1451.")
    assert _state(srv.port, uid) == "IN PROGRESS"
    again = ups(srv.port, "claim", uid)
    assert again.returncode == 2 and "0xC302" in again.stderr

    wrong = ups(srv.port, "set", uid, "-T", "1.2.3.4", "-k", "ProcedureStepLabel=x")
    assert wrong.returncode == 2 and "0xC301" in wrong.stderr
    right = ups(srv.port, "set", uid, "-T", lock, "-k", "ProcedureStepLabel=renamed")
    assert right.returncode == 0, right.stderr

    given_up = ups(srv.port, "create").stdout.strip()
    other_lock = ups(srv.port, "claim", given_up)
    assert other_lock.returncode == 0 and other_lock.stdout.count("\n") == 1  # the UID alone
    # the performer cancels: the tool gives the progress item its reason code first
    dropped = ups(srv.port, "cancel", given_up, "-T", other_lock.stdout.strip(),
                  "--reason", "no capacity")
    assert dropped.returncode == 0, dropped.stderr + dropped.stdout
    done = ups(srv.port, "complete", uid, "-T", lock)
    assert done.returncode == 0, done.stderr + done.stdout
    assert _state(srv.port, uid) == "COMPLETED"
    late = ups(srv.port, "cancel", uid)
    assert late.returncode == 2 and "0xC311" in late.stderr

    other = ups(srv.port, "create", "-k", "PatientID=P10").stdout.strip()
    asked = ups(srv.port, "cancel", other, "--reason", "duplicate order")
    assert asked.returncode == 0, asked.stderr
    assert _state(srv.port, other) == "CANCELED"
    warned = ups(srv.port, "cancel", other)
    assert warned.returncode == 1 and "0xB304" in warned.stdout  # a warning

    missing = ups(srv.port, "get", "1.2.3.999")
    assert missing.returncode == 2 and "0xC307" in missing.stderr

    assert srv.stop() == 0
    again_srv = await serve(data=srv.data).ready()  # the same data directory
    assert _state(again_srv.port, uid) == "COMPLETED"
    assert _state(again_srv.port, other) == "CANCELED"


def test_no_association_and_bad_input_exit_3() -> None:
    port = free_port()
    gone = ups(port, "get", "1.2.3")
    assert gone.returncode == 3 and gone.stderr.count("\n") == 1
    bad = ups(port, "set", "1.2.3", "-T", "1.2")
    assert bad.returncode == 3 and "modification list is needed" in bad.stderr

"""Starting the real ``aiodimse serve`` process in tests, and killing it in teardown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ..dcmtk_tools import free_port

__all__ = ["CT", "free_port", "ServeProcess", "write_instance", "wait_for"]

CT = "1.2.840.10008.5.1.4.1.1.2"
READY_TIMEOUT = 20.0


def write_instance(directory: Path, sop_class: str = CT) -> str:
    """A small DICOM file under ``directory``; returns its SOP Instance UID."""
    uid = str(generate_uid())
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    ds.PatientID = "TEST"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    directory.mkdir(parents=True, exist_ok=True)
    ds.save_as(directory / f"{uid}.dcm", enforce_file_format=True)
    return uid


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``predicate()`` until true, bounded."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class ServeProcess:
    """``python -m aiodimse serve`` on a free port with its log in a file."""

    def __init__(self, data: Path, *extra: str, port: int | None = None,
                 wrap: Sequence[str] = ()) -> None:
        self.data = data
        self.wrap = list(wrap)  # an argv prefix: e.g. ``ip netns exec NAME`` (netns.py)
        self.port = port or free_port()
        self.extra: Sequence[str] = extra
        self.log_path = data.parent / f"serve-{self.port}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServeProcess:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        argv = [*self.wrap, sys.executable, "-m", "aiodimse", "serve", "--host", "127.0.0.1",
                "--port", str(self.port), "--data", str(self.data), "--log-level", "DEBUG",
                "--timeout", "5", *self.extra]
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def ready(self, count: int = 1) -> ServeProcess:
        """Wait until ``count`` processes logged that they serve."""
        await wait_for(lambda: self.log().count(" serving ") >= count or self.exited(),
                       READY_TIMEOUT, "aiodimse serve to listen")
        if self.exited():
            raise AssertionError(f"aiodimse serve exited:\n{self.log()}")
        return self

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signal and wait; kill if it does not end. Returns the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._log.close()
        return proc.returncode

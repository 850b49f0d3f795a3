"""Many small instances by C-STORE over one association, written to disk: instances/s.

Servers, each in its own process and writing every instance to an output folder:
aiodimse (``AE.store_to_file``, the handler moving the file into place), ``aiodimse
serve`` (the archive: each instance checked, renamed into its study/series folder
and indexed in SQLite before the answer) with ``[storage] fsync = false`` (as DCMTK
and pynetdicom: no sync) and, as "aiodimse serve fsync", the default ``fsync =
true``, pynetdicom (``_config.STORE_RECV_CHUNKED_DATASET``, the same handler as
aiodimse's; as shipped, no TCP_NODELAY) and DCMTK's ``storescp -od`` (TCP_NODELAY
on: its ``TCP_NODELAY`` environment switch). Every server receives PDUs of at most
16382 bytes (all their defaults). The sender is aiodimse's ``send_c_store`` of the
files, one association, one request at a time, for all of them.

    PYTHONPATH=$PWD python3 benchmarks/cstore_many.py [--count 1000] [--kib 512]

Reported, never asserted (the target: at least DCMTK's rate and 10x pynetdicom's), with
the CPU each server and the sender used per instance (user and system: a steadier
measure than the rate on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from aiodimse import AE

CT = "1.2.840.10008.5.1.4.1.1.2"

_AIODIMSE = """
import asyncio, os, sys
from aiodimse import AE, evt

async def main(port, spool, out):
    ae = AE("STORESCP")
    ae.add_supported_context("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")
    ae.store_to_file, ae.store_directory = True, spool
    def on_store(event):
        os.replace(event.dataset_path, os.path.join(out, event.request.AffectedSOPInstanceUID))
        return 0
    server = await ae.start_server(("127.0.0.1", port),
                                   evt_handlers=[(evt.EVT_C_STORE, on_store)])
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await server.shutdown(grace=1)

asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
"""

_PYNETDICOM = """
import os, sys
from pynetdicom import AE, evt, _config
_config.STORE_RECV_CHUNKED_DATASET = True
port, out = int(sys.argv[1]), sys.argv[3]
def on_store(event):
    os.replace(event.dataset_path, os.path.join(out, event.request.AffectedSOPInstanceUID))
    return 0
ae = AE("STORESCP")
ae.add_supported_context("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")
server = ae.start_server(("127.0.0.1", port), block=False,
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
sys.stdin.readline()
server.shutdown()
"""


def write_instances(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` CT instances of about ``size`` bytes each."""
    pixels = bytes(range(256)) * (size // 256)
    paths = []
    study, series = generate_uid(), generate_uid()
    for i in range(count):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CT, generate_uid()
        ds.PatientName, ds.PatientID, ds.Modality = "Many^Instances", "MANY", "CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study, series, i + 1
        ds.Rows, ds.Columns = 512, len(pixels) // 1024
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 15, 0, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = pixels
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CT
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu(pid: int) -> float:
    """Seconds of CPU (user and system, all its threads) process ``pid`` has used."""
    with open(f"/proc/{pid}/stat") as fp:
        fields = fp.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _send(port: int, paths: list[Path], pid: int) -> tuple[float, float, float]:
    """(seconds, server CPU s, client CPU s) to send ``paths`` over one association."""
    ae = AE("BENCH_SCU")
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    deadline = time.monotonic() + 60  # a loaded machine starts Python slowly
    while True:  # until the server listens
        try:
            assoc = await ae.associate("127.0.0.1", port, ae_title="STORESCP")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            await asyncio.sleep(0.025)
    start, server, client = time.perf_counter(), _cpu(pid), time.process_time()
    try:
        for path in paths:
            status = await assoc.send_c_store(path)
            if status.Status != 0:
                raise RuntimeError(f"C-STORE answered 0x{status.Status:04X}")
    finally:
        await assoc.release()
    return (time.perf_counter() - start, _cpu(pid) - server, time.process_time() - client)


def _stored(name: str, out: Path) -> int:
    """Instances the server wrote (the archive: its ``.dcm`` files, .incoming aside)."""
    if name.startswith("aiodimse serve"):
        return sum(1 for path in (out / "archive").rglob("*.dcm")
                   if ".incoming" not in path.parts)
    return len(os.listdir(out))


def run(name: str, paths: list[Path], work: Path) -> tuple[float, float, float]:
    """(seconds, server CPU s, client CPU s) to store ``paths`` on server ``name``."""
    spool, out = work / "spool", work / f"out-{name.replace(' ', '-')}"
    spool.mkdir(exist_ok=True)
    out.mkdir()
    port = _free_port()
    if name == "DCMTK storescp":
        args = [shutil.which("storescp", path="/usr/bin") or "storescp", "-aet", "STORESCP",
                "-od", str(out), str(port)]
        env = dict(os.environ, TCP_NODELAY="1")
    elif name.startswith("aiodimse serve"):
        config = work / "serve.toml"
        config.write_text(f"[storage]\nfsync = {str(name.endswith('fsync')).lower()}\n")
        args = [sys.executable, "-m", "aiodimse", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--data", str(out), "-aet", "STORESCP",
                "--config", str(config), "--log-level", "WARNING"]
        env = dict(os.environ)
    else:
        source = _AIODIMSE if name == "aiodimse" else _PYNETDICOM
        args = [sys.executable, "-c", source, str(port), str(spool), str(out)]
        env = dict(os.environ)
    proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        took = asyncio.run(_send(port, paths, proc.pid))
        stored = _stored(name, out)
        if stored != len(paths):
            raise RuntimeError(f"{name} stored {stored} of {len(paths)} instances")
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        if name.startswith("aiodimse serve"):
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(out)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--kib", type=int, default=512)
    parser.add_argument("--contenders", default="aiodimse,aiodimse serve,aiodimse serve fsync,"
                        "DCMTK storescp,pynetdicom")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cstore-many-"))
    try:
        (work / "in").mkdir()
        paths = write_instances(work / "in", args.count, args.kib * 1024)
        print(f"{args.count} instances of {paths[0].stat().st_size / 1024:.0f} KiB, "
              "one association, back to back")
        print(f"{'server':<20} {'instances/s':>12} {'MiB/s':>8} {'server CPU ms/inst':>19} "
              f"{'client CPU ms/inst':>19}")
        size = sum(p.stat().st_size for p in paths) / 2**20
        for name in args.contenders.split(","):
            took, server, client = run(name, paths, work)
            count = len(paths)
            print(f"{name:<20} {count / took:>12.1f} {size / took:>8.1f} "
                  f"{server * 1000 / count:>19.2f} {client * 1000 / count:>19.2f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

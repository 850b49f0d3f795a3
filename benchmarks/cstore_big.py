"""One large instance (1 GiB by default) by C-STORE: MiB/s and the server's RSS growth.

Servers: aiodimse with ``AE.store_to_file`` (a subprocess, its handler moving the
file into an output folder) and DCMTK's ``storescp +B`` (bit-preserving: written as
received), with TCP_NODELAY on for DCMTK (its ``TCP_NODELAY`` environment switch).
The sender is aiodimse's ``send_c_store`` of a file for both, streamed from disk.
RSS growth is the server's peak RSS (VmHWM) over its RSS when listening.

    PYTHONPATH=$PWD python3 benchmarks/cstore_big.py [--mib 1024] [--runs 1]

Reported, never asserted (the target: MB/s at least 0.8x DCMTK's, growth under 64 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from aiodimse import AE

CT = "1.2.840.10008.5.1.4.1.1.2"
PIECE = 4 << 20

_SERVER = """
import asyncio, os, sys
from aiodimse import AE, evt

def status(key):
    with open("/proc/self/status") as fp:
        for line in fp:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

async def main(spool, out):
    ae = AE("STORESCP")
    ae.add_supported_context("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")
    ae.store_to_file, ae.store_directory = True, spool
    ae.dimse_timeout = ae.network_timeout = 600.0
    def on_store(event):
        os.replace(event.dataset_path, os.path.join(out, event.request.AffectedSOPInstanceUID))
        return 0
    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=[(evt.EVT_C_STORE, on_store)])
    with open("/proc/self/clear_refs", "w") as fp:
        fp.write("5")
    print(server.port, status("VmRSS"), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print(status("VmHWM"), flush=True)
    await server.shutdown(grace=1)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def write_instance(path: Path, pixel_bytes: int) -> None:
    """A CT instance with ``pixel_bytes`` of Pixel Data, written piece by piece."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CT, generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "Big^Instance", "BIG", "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows = ds.Columns = 1024
    ds.NumberOfFrames = pixel_bytes // (2 << 20)
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 15, 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    piece = bytes(range(256)) * (PIECE // 256)
    with open(path, "ab") as fp:
        fp.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes))
        for start in range(0, pixel_bytes, PIECE):
            fp.write(piece[:min(PIECE, pixel_bytes - start)])


def _status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fp:
        for line in fp:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(key)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _send(port: int, path: Path) -> float:
    ae = AE("BENCH_SCU")
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    ae.dimse_timeout = ae.network_timeout = 600.0
    async with ae.associate("127.0.0.1", port, ae_title="STORESCP") as assoc:
        start = time.perf_counter()
        status = await assoc.send_c_store(path)
        took = time.perf_counter() - start
    if status.Status != 0:
        raise RuntimeError(f"C-STORE answered 0x{status.Status:04X}")
    return took


async def run_aiodimse(path: Path, work: Path) -> tuple[float, int]:
    spool, out = work / "spool", work / "out-aiodimse"
    spool.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(spool), str(out)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        port, baseline = map(int, proc.stdout.readline().split())
        took = await _send(port, path)
        proc.stdin.write("\n")
        proc.stdin.flush()
        peak = int(proc.stdout.readline())
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=30)
    shutil.rmtree(out)
    return took, peak - baseline


async def run_dcmtk(path: Path, work: Path) -> tuple[float, int]:
    out = work / "out-dcmtk"
    out.mkdir(exist_ok=True)
    port = _free_port()
    proc = subprocess.Popen([shutil.which("storescp", path="/usr/bin") or "storescp", "+B",
                             "-aet", "STORESCP", "-od", str(out), "-pdu", "16384", str(port)],
                            env=dict(os.environ, TCP_NODELAY="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.025)
        with open(f"/proc/{proc.pid}/clear_refs", "w") as fp:
            fp.write("5")
        baseline = _status(proc.pid, "VmRSS")
        took = await _send(port, path)
        peak = _status(proc.pid, "VmHWM")
    finally:
        proc.kill()
        proc.wait(timeout=30)
    shutil.rmtree(out)
    return took, peak - baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="pixel data MiB (even)")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cstore-big-"))
    try:
        path = work / "big.dcm"
        write_instance(path, args.mib << 20)
        size = path.stat().st_size
        print(f"instance: {size / 2**20:.0f} MiB, {args.runs} run(s) each, back to back")
        print(f"{'server':<22} {'MiB/s':>8} {'RSS growth MiB':>15}")
        for name, runner in (("aiodimse store_to_file", run_aiodimse),
                             ("DCMTK storescp +B", run_dcmtk)):
            for _ in range(args.runs):
                took, growth = asyncio.run(runner(path, work))
                print(f"{name:<22} {size / 2**20 / took:>8.1f} {growth / 2**20:>15.1f}",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Many small instances by C-STORE over one association, written to disk: instances/s.

Servers, each in its own process and writing every instance to an output folder:
aiodimse (``AE.store_to_file``, an ``async def`` handler moving the file into place:
the library's idiom; a plain ``def`` handler runs on a handler thread, as pynetdicom's
contract allows it to block, and costs about a tenth more instructions), ``aiodimse
serve`` (the archive: each instance checked, renamed into its study/series folder
and indexed in SQLite before the answer) with ``[storage] fsync = false`` (as DCMTK
and pynetdicom: no sync) and, as "aiodimse serve fsync", the default ``fsync =
true``, pynetdicom (``_config.STORE_RECV_CHUNKED_DATASET``, the same handler body as
aiodimse's, a plain function; as shipped, no TCP_NODELAY) and DCMTK's ``storescp -od`` (TCP_NODELAY
on: its ``TCP_NODELAY`` environment switch). Every server receives PDUs of at most
16384 bytes (all their defaults). The sender is the same for all of them, one
association, one request at a time: DCMTK's ``storescu`` of the files (``--client
storescu``, the default: a C++ sender whose CPU and latency weigh least on the
servers' rates; timed from its "Association Accepted" to its "Releasing Association",
not its scan of the files before) or aiodimse's ``send_c_store`` (``--client
aiodimse``, timed from the association to its release).

    PYTHONPATH=$PWD python3 benchmarks/cstore_many.py [--count 1000] [--kib 512]
                                                      [--client storescu|aiodimse]

Reported, never asserted (the target: at least DCMTK's rate and 10x pynetdicom's), with
the CPU each server and the sender used per instance (user and system: a steadier
measure than the rate on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import IO

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
    async def on_store(event):
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


# storescu's log lines, each with its time (seconds since the epoch): the store phase
# is from the association accepted to the release.
_STORESCU_LOG = """\
log4cplus.rootLogger = INFO, console
log4cplus.appender.console = log4cplus::ConsoleAppender
log4cplus.appender.console.layout = log4cplus::PatternLayout
log4cplus.appender.console.layout.ConversionPattern = %D{%s.%q} %m%n
"""


def _listening(port: int) -> bool:
    """Whether a socket listens on ``port`` (no connection made to ask)."""
    with open("/proc/net/tcp") as fp:
        return any(fields[1].endswith(f":{port:04X}") and fields[3] == "0A"
                   for fields in (line.split() for line in fp.readlines()[1:]))


def _storescu(port: int, paths: list[Path], pid: int, work: Path, start_timeout: float
              ) -> tuple[float, float, float]:
    """As :func:`_send`, by DCMTK's storescu (TCP_NODELAY on)."""
    deadline = time.monotonic() + start_timeout
    while not _listening(port):
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.025)
    config = work / "storescu-log.cfg"
    config.write_text(_STORESCU_LOG)
    args = [shutil.which("storescu", path="/usr/bin") or "storescu", "-lc", str(config),
            "-aec", "STORESCP", "127.0.0.1", str(port), *map(str, paths)]
    before, server = resource.getrusage(resource.RUSAGE_CHILDREN), _cpu(pid)
    done = subprocess.run(args, env=dict(os.environ, TCP_NODELAY="1"), capture_output=True,
                          text=True, check=False)
    server = _cpu(pid) - server
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    times = {}
    for line in done.stdout.splitlines() + done.stderr.splitlines():
        stamp, _, message = line.partition(" ")
        for key in ("Association Accepted", "Releasing Association"):
            if message.startswith(key):
                times[key] = float(stamp)
    if done.returncode or len(times) < 2:
        raise RuntimeError(f"storescu failed ({done.returncode}): {done.stderr[-2000:]}")
    return (times["Releasing Association"] - times["Association Accepted"], server, client)


async def _send(port: int, paths: list[Path], pid: int, start_timeout: float
                ) -> tuple[float, float, float]:
    """(seconds, server CPU s, client CPU s) to send ``paths`` over one association
    (the server listening within ``start_timeout`` seconds)."""
    ae = AE("BENCH_SCU")
    ae.add_requested_context(CT, ExplicitVRLittleEndian)
    deadline = time.monotonic() + start_timeout
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


def _server(name: str, work: Path, out: Path, port: int, *, prefix: tuple[str, ...],
            errors: int | IO[bytes]) -> subprocess.Popen[bytes]:
    """Start server ``name`` writing into ``out`` (``prefix``: valgrind's command)."""
    spool = work / "spool"
    spool.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1")  # (as icount.py)
    if name == "DCMTK storescp":
        args = [shutil.which("storescp", path="/usr/bin") or "storescp", "-aet", "STORESCP",
                "-od", str(out), str(port)]
        env["TCP_NODELAY"] = "1"
    elif name.startswith("aiodimse serve"):
        config = work / "serve.toml"
        config.write_text(f"[storage]\nfsync = {str(name.endswith('fsync')).lower()}\n")
        args = [sys.executable, "-m", "aiodimse", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--data", str(out), "-aet", "STORESCP",
                "--config", str(config), "--log-level", "WARNING"]
    else:
        source = _AIODIMSE if name == "aiodimse" else _PYNETDICOM
        args = [sys.executable, "-c", source, str(port), str(spool), str(out)]
    return subprocess.Popen([*prefix, *args], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=errors)


def _stop(name: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.stdin is not None:
        proc.stdin.close()  # the Python servers stop when their input ends
    if name.startswith("aiodimse serve") or name == "DCMTK storescp":
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(name: str, paths: list[Path], work: Path, client: str, *, prefix: tuple[str, ...] = (),
        errors: int | IO[bytes] = subprocess.DEVNULL) -> tuple[float, float, float]:
    """(seconds, server CPU s, client CPU s) to store ``paths`` on server ``name``."""
    out = work / f"out-{name.replace(' ', '-')}"
    out.mkdir()
    port = _free_port()
    proc = _server(name, work, out, port, prefix=prefix, errors=errors)
    try:
        start_timeout = 600 if prefix else 60  # a loaded machine starts Python slowly
        took = (_storescu(port, paths, proc.pid, work, start_timeout) if client == "storescu"
                else asyncio.run(_send(port, paths, proc.pid, start_timeout)))
        stored = _stored(name, out)
        if stored != len(paths):
            raise RuntimeError(f"{name} stored {stored} of {len(paths)} instances")
    finally:
        _stop(name, proc, 60 if prefix else 10)
        shutil.rmtree(out)
    return took


_CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")


def icount(name: str, paths: list[Path], work: Path, client: str, counts: tuple[int, int]
           ) -> float:
    """Server instructions an instance (user space, valgrind): a run storing
    ``counts[0]`` instances subtracted from one storing ``counts[1]``."""
    totals = []
    for count in counts:
        with tempfile.TemporaryFile() as errors:  # valgrind's report
            run(name, paths[:count], work, client, prefix=_CALLGRIND, errors=errors)
            errors.seek(0)
            found = re.findall(rb"Collected : (\d+)", errors.read())
        if not found:
            raise RuntimeError(f"no instruction count from valgrind for {name}")
        totals.append(int(found[-1]))
    return (totals[1] - totals[0]) / (counts[1] - counts[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--kib", type=int, default=512)
    parser.add_argument("--client", choices=("storescu", "aiodimse"), default="storescu")
    parser.add_argument("--rounds", type=int, default=1,
                        help="every contender in turn this many times: medians")
    parser.add_argument("--icount", metavar="LOW,HIGH", default=None,
                        help="server instructions an instance instead (valgrind): the "
                        "difference between storing HIGH and LOW instances")
    parser.add_argument("--contenders", default="aiodimse,aiodimse serve,aiodimse serve fsync,"
                        "DCMTK storescp,pynetdicom")
    args = parser.parse_args()
    names = args.contenders.split(",")
    work = Path(tempfile.mkdtemp(prefix="cstore-many-"))
    try:
        (work / "in").mkdir()
        counts = tuple(int(n) for n in args.icount.split(",")) if args.icount else None
        paths = write_instances(work / "in", counts[1] if counts else args.count,
                                args.kib * 1024)
        print(f"{len(paths)} instances of {paths[0].stat().st_size / 1024:.0f} KiB, "
              f"one association, back to back, sent by {args.client}")
        if counts:
            for name in names:
                found = icount(name, paths, work, args.client, (counts[0], counts[1]))
                print(f"{name:<20} {found:>12,.0f} instructions an instance", flush=True)
            return
        size = sum(p.stat().st_size for p in paths) / 2**20
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
        for _ in range(args.rounds):
            for name in names:
                results[name].append(run(name, paths, work, args.client))
        print(f"{'server':<20} {'instances/s':>12} {'MiB/s':>8} {'server CPU ms/inst':>19} "
              f"{'client CPU ms/inst':>19}" + ("  (medians)" if args.rounds > 1 else ""))
        count = len(paths)
        for name in names:
            took, server, client = (median(r[i] for r in results[name]) for i in range(3))
            print(f"{name:<20} {count / took:>12.1f} {size / took:>8.1f} "
                  f"{server * 1000 / count:>19.2f} {client * 1000 / count:>19.2f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

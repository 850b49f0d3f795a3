"""UPS workitem throughput: push + claim + complete cycles per second
from C concurrent SCUs against one UPSService on loopback, SQLite in a temporary
folder.

Each SCU holds one association (Push and Pull contexts) and runs cycles of four
requests: N-CREATE (push), N-ACTION IN PROGRESS (claim, a new Transaction UID),
N-SET of the performed procedure (the final-state attributes), N-ACTION COMPLETED.
Reported: cycles/s and requests/s over the whole run, and the median and 99th
percentile of one cycle's time.

No contender runs beside it: pynetdicom gives handler hooks only (no UPS SCP, no
workitem store or state machine), and would answer the same load with one thread
per association (100 threads for C=100), each request's store write serialised by
whatever store the user writes.

    python3 benchmarks/ups_cycles.py [--scus 100] [--cycles 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from pydicom.dataset import Dataset

from aiodimse import AE, Association
from aiodimse.services import ServiceSet
from aiodimse.services.ups import UPS_PULL, UPS_PUSH, UPSService
from aiodimse.store.sqlite import SQLiteStore
from aiodimse.uids import new_uid

__all__ = ["main"]


def _workitem(n: int) -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = "SCHEDULED"
    ds.ScheduledProcedureStepPriority = "MEDIUM"
    ds.ProcedureStepLabel = f"bench {n}"
    ds.WorklistLabel = "BENCH"
    ds.ScheduledProcedureStepStartDateTime = "20260101100000"
    ds.InputReadinessState = "READY"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        setattr(ds, keyword, "")
    ds.PatientID = f"P{n}"
    for keyword in ("ScheduledWorkitemCodeSequence", "InputInformationSequence",
                    "ScheduledStationNameCodeSequence"):
        setattr(ds, keyword, [])
    return ds


def _state(state: str, lock: str) -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = state
    ds.TransactionUID = lock
    return ds


def _performed(lock: str) -> Dataset:
    item = Dataset()
    station, workitem = Dataset(), Dataset()
    for code, value in ((station, "WS1"), (workitem, "110005")):
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "99LOCAL", value
    item.PerformedStationNameCodeSequence = [station]
    item.PerformedWorkitemCodeSequence = [workitem]
    item.PerformedProcedureStepStartDateTime = "20260101100500"
    item.PerformedProcedureStepEndDateTime = "20260101101000"
    item.OutputInformationSequence = []
    ds = Dataset()
    ds.UnifiedProcedureStepPerformedProcedureSequence = [item]
    ds.TransactionUID = lock
    return ds


async def _cycle(assoc: Association, n: int) -> None:
    status, _ = await assoc.send_n_create(_workitem(n), UPS_PUSH)
    uid, lock = str(status.AffectedSOPInstanceUID), new_uid()
    codes = [int(status.Status)]
    status, _ = await assoc.send_n_action(_state("IN PROGRESS", lock), 1, UPS_PUSH, uid,
                                          UPS_PULL)
    codes.append(int(status.Status))
    status, _ = await assoc.send_n_set(_performed(lock), UPS_PUSH, uid, UPS_PULL)
    codes.append(int(status.Status))
    status, _ = await assoc.send_n_action(_state("COMPLETED", lock), 1, UPS_PUSH, uid,
                                          UPS_PULL)
    codes.append(int(status.Status))
    if any(codes):
        raise RuntimeError(f"cycle {n}: statuses {[hex(c) for c in codes]}")


async def run(scus: int, cycles: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore.in_directory(tmp)
        services = ServiceSet([UPSService(store)])
        server = await services.start_server(AE("UPS_SCP"), ("127.0.0.1", 0))
        times: list[float] = []
        left = [cycles]
        try:
            async def scu() -> None:
                ae = AE("BENCH")
                ae.add_requested_context(UPS_PUSH)
                ae.add_requested_context(UPS_PULL)
                async with ae.associate("127.0.0.1", server.port, ae_title="UPS_SCP") as assoc:
                    while left[0] > 0:
                        left[0] -= 1
                        started = time.perf_counter()
                        await _cycle(assoc, left[0])
                        times.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(scu() for _ in range(scus)))
            elapsed = time.perf_counter() - started
        finally:
            await services.shutdown(server, 5.0)
            await store.aclose()
    times.sort()
    return {"scus": scus, "cycles": len(times), "seconds": elapsed,
            "cycles_per_s": len(times) / elapsed, "requests_per_s": 4 * len(times) / elapsed,
            "cycle_p50_ms": 1000 * statistics.median(times),
            "cycle_p99_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.99))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scus", type=int, default=100,
                        help="concurrent SCUs (default %(default)s)")
    parser.add_argument("--cycles", type=int, default=2000,
                        help="cycles in all (default %(default)s)")
    args = parser.parse_args()
    result = asyncio.run(run(args.scus, args.cycles))
    print(f"UPS push+claim+set+complete: {result['cycles']:.0f} cycles from "
          f"{result['scus']:.0f} SCUs in {result['seconds']:.2f}s: "
          f"{result['cycles_per_s']:.0f} cycles/s ({result['requests_per_s']:.0f} requests/s); "
          f"cycle p50 {result['cycle_p50_ms']:.1f} ms, p99 {result['cycle_p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()

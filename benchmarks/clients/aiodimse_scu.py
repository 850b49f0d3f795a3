"""aiodimse SCU contender (row 7), written against its public API: one
association, sequential ``send_n_action`` or ``send_c_echo``. Prints ``NA <reason>``
when aiodimse does not offer that API yet."""

from __future__ import annotations

import argparse
import time

from benchmarks import pdus
from benchmarks.clients._common import Tally, parse_args, report
from benchmarks.procs import run_loop


async def run(args: argparse.Namespace) -> None:
    try:
        from aiodimse import AE
    except ImportError as exc:
        print(f"NA aiodimse has no AE yet ({exc})", flush=True)
        return
    ae = AE(ae_title="BENCH_SCU")
    ae.add_requested_context(pdus.STGCMT_CLASS)
    ae.add_requested_context(pdus.VERIFICATION)
    if hasattr(ae, "maximum_pdu_size"):
        ae.maximum_pdu_size = pdus.MAX_PDU
    ds = pdus.stgcmt_pydicom(args.refs)
    try:
        assoc = await ae.associate(args.host, args.port, ae_title="BENCH_SCP")
    except Exception as exc:  # an unfinished API may fail in any way: report n/a
        print(f"NA aiodimse associate failed: {exc!r}", flush=True)
        return
    print("READY 0", flush=True)
    tally = Tally()
    deadline = time.perf_counter() + args.duration
    try:
        for _ in range(args.max_ops):
            t = time.perf_counter()
            if t >= deadline:
                break
            if args.op == "echo":
                status = await assoc.send_c_echo()
            else:
                status, _ = await assoc.send_n_action(
                    ds, 1, pdus.STGCMT_CLASS, pdus.STGCMT_INSTANCE
                )
            code = getattr(status, "Status", None)
            if code == 0:
                tally.record(True, t)
            else:  # the reason is formatted only for a failure
                tally.record(False, t, f"status {code!r}")
        report(tally.as_dict())
    finally:
        await assoc.release()


def main() -> None:
    args = parse_args(__doc__ or "")
    run_loop(run(args), args.loop)


if __name__ == "__main__":
    main()

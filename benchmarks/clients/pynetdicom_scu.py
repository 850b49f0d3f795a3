"""pynetdicom SCU contender (row 7): one association, sequential N-ACTION or C-ECHO."""

from __future__ import annotations

import time

from benchmarks import pdus
from benchmarks.clients._common import Tally, parse_args, report


def main() -> None:
    args = parse_args(__doc__ or "")
    from pynetdicom import AE

    ae = AE(ae_title="BENCH_SCU")
    ae.add_requested_context(pdus.STGCMT_CLASS, pdus.IMPLICIT_LE)
    ae.add_requested_context(pdus.VERIFICATION, pdus.IMPLICIT_LE)
    ae.maximum_pdu_size = pdus.MAX_PDU
    # A lost response (seen once in a full run, pinned to one core) costs 10 s and a
    # recorded failure, not a hang that the harness can only report as n/a.
    ae.dimse_timeout = 10
    ae.acse_timeout = 10
    ds = pdus.stgcmt_pydicom(args.refs)
    assoc = ae.associate(args.host, args.port, ae_title="BENCH_SCP")
    if not assoc.is_established:
        print("NA pynetdicom SCU could not associate", flush=True)
        return
    print("READY 0", flush=True)
    tally = Tally()
    deadline = time.perf_counter() + args.duration
    try:
        for _ in range(args.max_ops):
            t = time.perf_counter()
            if t >= deadline:
                break
            if not assoc.is_established:  # aborted after a DIMSE timeout
                tally.record(False, t, "association ended")
                break
            if args.op == "echo":
                status = assoc.send_c_echo()
            else:
                status, _ = assoc.send_n_action(ds, 1, pdus.STGCMT_CLASS, pdus.STGCMT_INSTANCE)
            code = getattr(status, "Status", None)
            if code == 0:
                tally.record(True, t)
            else:  # the reason is formatted only for a failure
                tally.record(False, t, f"status {code!r}")
        report(tally.as_dict())
    finally:
        assoc.release()


if __name__ == "__main__":
    main()

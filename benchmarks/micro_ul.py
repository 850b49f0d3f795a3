"""Per-stage CPU cost of layers 1-3 on the P-DATA path of one N-ACTION exchange.

Run: ``python3 benchmarks/micro_ul.py [--refs K] [--repeat N]``

The same request bytes as the load generator (benchmarks/pdus.py), and the response
the SCP sends for ``(0x0000, None)``. Each stage is timed alone (best of N runs,
ns per operation), then the two paths whole:

* receive: bytes -> ``UpperLayer.receive_data`` (Sta6) -> ``MessageAssembler.feed_pdv``
  for every PDV -> ``ReceivedMessage`` (``decode_command`` included);
* send: ``encode_command`` -> ``encode_message`` -> ``send_pdata`` -> ``data_to_send``
  and ``next_deadline`` (the adapter calls both after every event).

These are the numbers to optimise the sans-IO core against; micro_server.py adds the
layers above and the event loop.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiodimse.dimse import (
    MessageAssembler,
    NActionRSP,
    decode_command,
    encode_command,
    encode_message,
)
from aiodimse.ul import DataIndication, UpperLayer
from aiodimse.wire.codec import decode_pdu
from aiodimse.wire.items import PresentationContextAC, UserInformation
from aiodimse.wire.pdus import AAssociateAC
from aiodimse.wire.reader import PDUReader
from benchmarks import pdus

STGCMT_CLASS = "1.2.840.10008.1.20.1"
STGCMT_INSTANCE = "1.2.840.10008.1.20.1.1"


def per_op_ns(func: Callable[[], object], repeat: int) -> float:
    """Best-of-``repeat`` ns per call, each run about 0.1 s."""
    timer = timeit.Timer(func)
    number, elapsed = timer.autorange()
    number = max(1, int(number * 0.1 / max(elapsed, 1e-9)))
    return min(timer.repeat(repeat, number)) / number * 1e9


def established() -> UpperLayer:
    """An acceptor core in Sta6, as the server has it after accepting the benchmark peer."""
    ul = UpperLayer(requestor=False)
    ul.transport_indication(0.0)
    ul.receive_data(pdus.build_associate_rq(), 0.0)
    ul.accept(
        AAssociateAC(
            called_ae_title="BENCH_SCP",
            calling_ae_title="BENCH_SCU",
            presentation_contexts=(
                PresentationContextAC(
                    context_id=pdus.PC_STGCMT, result=0, transfer_syntax="1.2.840.10008.1.2"
                ),
            ),
            user_information=UserInformation(
                maximum_length=pdus.MAX_PDU, implementation_class_uid="1.2.3.4"
            ),
        ),
        0.0,
    )
    ul.data_to_send()
    return ul


def split(stream: bytes) -> list[bytes]:
    out = []
    pos = 0
    while pos < len(stream):
        end = pos + 6 + int.from_bytes(stream[pos + 2 : pos + 6], "big")
        out.append(stream[pos:end])
        pos = end
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    repeat = args.repeat

    request = pdus.n_action_rq(args.refs).render(7)
    command_pdu, *data_pdus = split(request)
    command = bytes(decode_pdu(command_pdu).pdvs[0].data)  # type: ignore[union-attr]
    response = NActionRSP(
        MessageIDBeingRespondedTo=7,
        Status=0,
        AffectedSOPClassUID=STGCMT_CLASS,
        AffectedSOPInstanceUID=STGCMT_INSTANCE,
        ActionTypeID=1,
    )
    response_command = encode_command(response, has_dataset=False)
    ul = established()
    assembler = MessageAssembler()
    reader = PDUReader(max_pdata_length=pdus.MAX_PDU)

    def read_pdus() -> object:
        reader.feed(request)
        pdu = None
        while (nxt := reader.next_pdu()) is not None:
            pdu = nxt
        return pdu

    def receive() -> object:
        return ul.receive_data(request, 0.0)

    indications = [ev for ev in ul.receive_data(request, 0.0) if type(ev) is DataIndication]
    pdvs = [pdv for ev in indications for pdv in ev.pdvs]

    def assemble() -> object:
        received = None
        for pdv in pdvs:
            received = assembler.feed_pdv(pdv.context_id, pdv.control, pdv.data)
        assert received is not None
        return received

    def receive_path() -> object:
        received = None
        for ev in ul.receive_data(request, 0.0):
            if type(ev) is DataIndication:
                for pdv in ev.pdvs:
                    received = assembler.feed_pdv(pdv.context_id, pdv.control, pdv.data)
        assert received is not None
        return received

    def send_queue() -> object:
        ul.send_pdata(request)
        ul.next_deadline()
        return ul.data_to_send()

    def send_path() -> object:
        cmd = encode_command(response, has_dataset=False)
        ul.send_pdata(encode_message(pdus.PC_STGCMT, cmd, None, pdus.MAX_PDU))
        ul.next_deadline()
        return ul.data_to_send()

    stages: list[tuple[str, Callable[[], object]]] = [
        ("PDUReader feed+next_pdu", read_pdus),
        ("UpperLayer.receive_data", receive),
        ("feed_pdv (all PDVs)", assemble),
        ("decode_command N-ACTION-RQ", lambda: decode_command(command)),
        ("encode_command N-ACTION-RSP", lambda: encode_command(response, has_dataset=False)),
        ("encode_message (command)", lambda: encode_message(1, response_command, None, 16384)),
        ("send_pdata+data_to_send", send_queue),
        ("RECEIVE PATH", receive_path),
        ("SEND PATH", send_path),
    ]
    print(
        f"N-ACTION-RQ with {args.refs} ref(s): {len(request)} bytes in {1 + len(data_pdus)} "
        f"PDUs; best of {repeat}, ns/op\n"
    )
    for name, func in stages:
        print(f"{name:<30}{per_op_ns(func, repeat):>9.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

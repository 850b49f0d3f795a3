"""Micro-benchmarks of the DIMSE layer against pynetdicom's own message classes.

Run: ``python3 benchmarks/micro_dimse.py [--quick]``

1. Command sets, per message type (ns/op). "encode" builds the message from its
   field values and encodes the command set: aiodimse = dataclass + encode_command;
   pynetdicom = primitive + primitive_to_message + dsutils.encode. "decode" goes
   from command-set bytes to a message whose fields can be read: aiodimse =
   decode_command; pynetdicom = decode_msg (one P-DATA) + message_to_primitive.
2. Fragmenting a message with a 1 KB / 1 MB / 64 MB data set into 16 KB PDUs and
   reassembling it from its PDVs (MB/s of data set, and tracemalloc peak of extra
   memory in multiples of the data set size), with a memcpy baseline.
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable
from typing import Any, cast

from pynetdicom import dimse_messages as pm
from pynetdicom import dimse_primitives as pp
from pynetdicom.dsutils import encode as pyn_encode
from pynetdicom.pdu_primitives import P_DATA

from aiodimse.dimse import (
    MESSAGE_CLASSES,
    DIMSEMessage,
    MessageAssembler,
    NActionRQ,
    decode_command,
    encode_command,
    encode_message,
)

PDU = 16 * 1024
SAMPLES: dict[str, Any] = {
    "MessageID": 7,
    "MessageIDBeingRespondedTo": 7,
    "Status": 0x0000,
    "ErrorID": 0x0001,
    "EventTypeID": 1,
    "ActionTypeID": 1,
    "AffectedSOPClassUID": "1.2.840.10008.1.20.1",
    "RequestedSOPClassUID": "1.2.840.10008.1.20.1",
    "AffectedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
    "RequestedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
    "ErrorComment": "benchmark",
    "AttributeIdentifierList": (0x00100010, 0x00100020),
}


def per_op_ns(func: Callable[[], object], budget: float) -> float:
    """Best-of-3 ns per call, each run sized to about ``budget`` seconds."""
    timer = timeit.Timer(func)
    number, _ = timer.autorange()
    number = max(1, int(number * budget / 0.2))
    return min(timer.repeat(3, number)) / number * 1e9


def pyn_names(cls: type[DIMSEMessage]) -> tuple[str, str]:
    name = pm._MESSAGE_TYPES[cls.command_field][0]
    return name.replace("-", "_"), name


def fields_for(cls: type[DIMSEMessage]) -> dict[str, Any]:
    keywords = pm._COMMAND_SET_KEYWORDS[pyn_names(cls)[1]]
    return {n: SAMPLES[n] for n, _vr, _m in cls._field_specs if n in keywords}


def bench_commands(budget: float) -> list[float]:
    print("\n## Command sets (ns/op; lower is better)\n")
    header = (
        f"{'message':<18}{'ours enc':>10}{'pyn enc':>11}{'ratio':>7}"
        f"{'ours dec':>10}{'pyn dec':>11}{'ratio':>7}{'enc+dec':>9}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for cls in sorted(MESSAGE_CLASSES.values(), key=lambda c: c.command_field):
        kwargs = fields_for(cls)
        message = cls(**kwargs)
        data = encode_command(message, has_dataset=False)
        cls_name, _ = pyn_names(cls)
        primitive_cls = getattr(pp, cls_name.rsplit("_", 1)[0])
        pyn_cls = getattr(pm, cls_name)
        pyn_kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}

        def ours_encode(cls: type[DIMSEMessage] = cls, kwargs: dict[str, Any] = kwargs) -> bytes:
            return encode_command(cls(**kwargs), has_dataset=False)

        def pyn_encode_once(
            primitive_cls: Any = primitive_cls, pyn_cls: Any = pyn_cls, kw: Any = pyn_kwargs
        ) -> bytes:
            primitive = primitive_cls()
            for key, value in kw.items():
                setattr(primitive, key, value)
            msg = pyn_cls()
            msg.primitive_to_message(primitive)
            return cast(bytes, pyn_encode(msg.command_set, True, True))

        assert pyn_encode_once() == data  # same bytes, so the comparison is fair
        pdv = [[1, b"\x03" + data]]

        def pyn_decode_once(pdv: Any = pdv) -> Any:
            pdata = P_DATA()
            pdata.presentation_data_value_list = pdv
            msg = pm.DIMSEMessage()
            msg.decode_msg(pdata)
            return msg.message_to_primitive()

        def ours_decode(data: bytes = data) -> object:
            return decode_command(data)

        oe = per_op_ns(ours_encode, budget)
        pe = per_op_ns(pyn_encode_once, budget)
        od = per_op_ns(ours_decode, budget)
        pd = per_op_ns(pyn_decode_once, budget)
        both = (pe + pd) / (oe + od)
        ratios.append(both)
        print(
            f"{cls.__name__:<18}{oe:>10.0f}{pe:>11.0f}{pe / oe:>6.1f}x"
            f"{od:>10.0f}{pd:>11.0f}{pd / od:>6.1f}x{both:>8.1f}x"
        )
    print(f"\nencode+decode speed-up vs pynetdicom: min {min(ratios):.1f}x, max {max(ratios):.1f}x")
    return ratios


def timed(func: Callable[[], object], repeat: int) -> float:
    """Best wall time of one call; tiny operations are averaged over many calls."""
    start = time.perf_counter()
    func()
    once = time.perf_counter() - start
    if once < 1e-3:
        number = max(10, int(0.02 / max(once, 1e-7)))
        return min(timeit.Timer(func).repeat(repeat, number)) / number
    best = once
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def peak_extra(func: Callable[[], object]) -> int:
    """Peak bytes allocated while ``func`` runs (its result included)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result = func()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del result
    return peak


def split_pdvs(stream: bytes) -> list[tuple[int, int, memoryview]]:
    """What the wire layer hands up: (context, control, fragment view) per PDV."""
    view = memoryview(stream)
    out = []
    pos = 0
    while pos < len(stream):
        length = int.from_bytes(view[pos + 2 : pos + 6], "big")
        end = pos + 6 + length
        q = pos + 6
        while q < end:
            item = int.from_bytes(view[q : q + 4], "big")
            out.append((view[q + 4], view[q + 5], view[q + 6 : q + 4 + item]))
            q += 4 + item
        pos = end
    return out


def bench_fragmentation(sizes: list[int], repeat: int, with_pyn_big: bool) -> None:
    print("\n## Fragment / reassemble through 16 KB PDUs (MB/s; peak extra memory / size)\n")
    header = (
        f"{'size':>8} {'operation':<22}{'us/op':>9}{'aiodimse':>10}{'mem':>7}"
        f"{'pynetdicom':>12}{'mem':>7}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    command = encode_command(
        NActionRQ(
            MessageID=1,
            RequestedSOPClassUID="1.2.840.10008.1.20.1",
            RequestedSOPInstanceUID="1.2.840.10008.1.20.1.1",
            ActionTypeID=1,
        ),
        has_dataset=True,
    )
    primitive = pp.N_ACTION()
    primitive.MessageID = 1
    primitive.RequestedSOPClassUID = "1.2.840.10008.1.20.1"
    primitive.RequestedSOPInstanceUID = "1.2.840.10008.1.20.1.1"
    primitive.ActionTypeID = 1

    for size in sizes:
        data = bytes(size)
        label = f"{size // 1024} KB" if size < 1 << 20 else f"{size >> 20} MB"
        mb = size / 1e6
        reps = repeat if size < 1 << 24 else max(1, repeat // 3)
        run_pyn = with_pyn_big or size < 1 << 24

        def ours_fragment(data: bytes = data) -> bytes:
            return encode_message(1, command, data, PDU)

        def pyn_fragment(data: bytes = data) -> list[Any]:
            primitive.ActionInformation = io.BytesIO(data)
            msg = pm.N_ACTION_RQ()
            msg.primitive_to_message(primitive)
            return list(msg.encode_msg(1, PDU))

        stream = ours_fragment()
        pdvs = split_pdvs(stream)

        def ours_reassemble(pdvs: list[tuple[int, int, memoryview]] = pdvs) -> object:
            assembler = MessageAssembler(max_dataset_length=1 << 30)
            feed = assembler.feed_pdv
            result = None
            for context_id, control, fragment in pdvs:
                result = feed(context_id, control, fragment)
            return result

        row: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
            ("fragment", ours_fragment, pyn_fragment)
        ]
        pyn_pdatas = pyn_fragment() if run_pyn else []

        def pyn_reassemble(pdatas: list[Any] = pyn_pdatas) -> object:
            msg = pm.DIMSEMessage()
            for pdata in pdatas:
                if msg.decode_msg(pdata):
                    break
            return msg.data_set.getvalue()  # type: ignore[union-attr]

        row.append(("reassemble", ours_reassemble, pyn_reassemble))
        for name, ours, theirs in row:
            t_ours = timed(ours, reps)
            m_ours = peak_extra(ours) / size
            if run_pyn:
                t_pyn = timed(theirs, reps)
                m_pyn = peak_extra(theirs) / size
                pyn_txt = f"{mb / t_pyn:>12.0f}{m_pyn:>6.2f}x{t_pyn / t_ours:>7.1f}x"
            else:
                pyn_txt = f"{'(skipped)':>12}"
            print(
                f"{label:>8} {name:<22}{t_ours * 1e6:>9.0f}{mb / t_ours:>10.0f}"
                f"{m_ours:>6.2f}x{pyn_txt}"
            )
        del pyn_pdatas, stream, pdvs

        def memcpy(data: bytes = data) -> bytes:
            return bytes(bytearray(data))

        t_copy = timed(memcpy, reps)
        print(f"{label:>8} {'memcpy bytes(bytearray)':<22}{t_copy * 1e6:>9.0f}{mb / t_copy:>10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (< 1 minute)")
    args = parser.parse_args()
    budget = 0.02 if args.quick else 0.3
    print(f"Python {sys.version.split()[0]}; {'quick' if args.quick else 'full'} mode")
    bench_commands(budget)
    # Quick mode skips pynetdicom at 64 MB (its runs dominate the time).
    bench_fragmentation(
        [1024, 1 << 20, 64 << 20], repeat=2 if args.quick else 7, with_pyn_big=not args.quick
    )


if __name__ == "__main__":
    main()

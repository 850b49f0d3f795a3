"""Deflated Explicit VR LE: inflation is bounded by the data set cap and a ratio, in steps.

A deflate bomb (a few kB that inflate to hundreds of MB) must be refused with a
failure status (0x0213 resource limitation), never decoded, stored or answered
with success; a real deflated data set still goes through.
"""

from __future__ import annotations

import asyncio
import random
import tracemalloc
import zlib
from typing import Any

import pytest
from pydicom.dataset import Dataset

from aiodimse import evt
from aiodimse.datasets import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    DatasetDecodeError,
    decode_dataset,
    encode_dataset,
)
from aiodimse.events import Event

from ._helpers import MPPS, RawDataset, bounded, ds_of, make_scp_ae, make_scu_ae, serving


def deflate(raw: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(raw) + packer.flush()


def bomb(size: int) -> bytes:
    """A deflated Explicit VR LE data set of one OB element of ``size`` zero bytes."""
    header = b"\x09\x00\x10\x00OB\x00\x00" + size.to_bytes(4, "little")  # (0009,0010) private
    return deflate(header + bytes(size))


def test_a_deflate_bomb_is_refused_by_the_ratio_limit_with_bounded_memory() -> None:
    data = bomb(64 << 20)  # 64 KiB that inflate to 64 MiB: a ratio of ~1000
    tracemalloc.start()
    try:
        with pytest.raises(DatasetDecodeError):
            decode_dataset(data, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * len(data) + (4 << 20)  # the ratio limit (200:1), and a step


def test_the_inflated_length_cap_is_kept_with_bounded_memory() -> None:
    ds = ds_of(PatientName="A^B", PatientID="x" * 64)
    bits = random.Random(3).randbytes(2 << 20).translate(bytes(i & 1 for i in range(256)))
    ds.add_new(0x00091010, "OB", bits)  # 2 MiB of one bit a byte: ~7:1
    data = encode_dataset(ds, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    tracemalloc.start()
    try:
        with pytest.raises(DatasetDecodeError):
            decode_dataset(data, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, max_inflated_length=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < (3 << 20) + (1 << 19)  # the cap, a step of 1 MiB, and slack
    assert decode_dataset(data, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN).PatientName == "A^B"


def test_a_real_deflated_data_set_decodes_as_its_plain_form() -> None:
    ds = ds_of(PatientName="A^B", PatientID="12345", PerformedProcedureStepStatus="IN PROGRESS")
    data = encode_dataset(ds, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    plain = encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN)
    assert decode_dataset(data, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) == decode_dataset(
        plain, EXPLICIT_VR_LITTLE_ENDIAN)


async def test_inflating_in_steps_lets_the_loop_run_between_them() -> None:
    from aiodimse.deflated import inflate_in_steps

    raw = random.Random(5).randbytes(1 << 20) * 8  # 8 MiB that hardly deflate
    data = deflate(raw)
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    running = asyncio.ensure_future(ticker())
    try:
        inflated = await bounded(inflate_in_steps(data, max_length=64 << 20, max_ratio=200))
    finally:
        done = True
        await running
    assert bytes(inflated) == raw
    assert ticks >= 4  # 8 steps of 1 MiB: the loop ran between them


@pytest.mark.usefixtures("raw_encoding")
@pytest.mark.parametrize("what", ["ratio", "cap"])
async def test_an_over_limit_deflated_n_create_is_answered_0x0213(what: str) -> None:
    seen: list[Any] = []

    def on_create(event: Event) -> tuple[int, Dataset | None]:
        seen.append(event.attribute_list)
        return 0x0000, None

    scp = make_scp_ae()
    scp.maximum_dataset_size = 1 << 20
    scu = make_scu_ae(classes=())
    scu.add_requested_context(MPPS, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    if what == "ratio":
        data = bomb(512 << 20)  # ~500 kB on the wire; 512 MiB inflated
    else:
        ds = ds_of(PatientID="1")
        bits = random.Random(7).randbytes(4 << 20).translate(bytes(i & 1 for i in range(256)))
        ds.add_new(0x00091010, "OB", bits)  # 4 MiB of one bit a byte: ~7:1
        data = encode_dataset(ds, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    assert len(data) < scp.maximum_dataset_size
    async with (
        serving([(evt.EVT_N_CREATE, on_create)], ae=scp) as server,
        scu.associate("127.0.0.1", server.port) as assoc,
    ):
        status, _ = await bounded(assoc.send_n_create(RawDataset(data), MPPS, "1.2.3.4"))
        # the association still serves a real one afterwards
        good = encode_dataset(ds_of(PatientID="2"), DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
        again, _ = await bounded(assoc.send_n_create(RawDataset(good), MPPS, "1.2.3.5"))
    assert status.Status == 0x0213
    assert again.Status == 0x0000
    assert [ds.PatientID for ds in seen] == ["2"]

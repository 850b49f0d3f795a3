"""A data set nested deeper than the decoder's limit is refused when it arrives.

Before, fastds refused it, pydicom decoded it anyway, the MPPS SCP stored it as
DICOM JSON, and N-GET then failed to read it back (RecursionError past ~200).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE
from aiodimse.datasets import DatasetDecodeError, decode_dataset, encode_dataset
from aiodimse.fastds import MAX_DEPTH
from aiodimse.services import MPPS

from ._helpers import running_scp

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


def nested(depth: int) -> Dataset:
    """An MPPS attribute list with sequences ``depth`` deep."""
    ds = Dataset()
    ds.PatientID = "deep"
    for _ in range(depth):
        outer = Dataset()
        outer.ReferencedStudySequence = [ds]
        ds = outer
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    return ds


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100, 220])  # (pydicom cannot encode ~250+)
@pytest.mark.parametrize("syntax", [IMPLICIT, EXPLICIT])
def test_decode_refuses_nesting_past_the_limit(depth: int, syntax: str) -> None:
    with pytest.raises(DatasetDecodeError):
        decode_dataset(encode_dataset(nested(depth), syntax), syntax)


# pydicom warns that it reads the explicit VR it finds: the mismatch is the point here
@pytest.mark.filterwarnings("ignore:Expected implicit VR:UserWarning")
def test_explicit_bytes_on_an_implicit_context_are_judged_too() -> None:
    # fastds declines this (pydicom switches VR encoding): the check still applies
    with pytest.raises(DatasetDecodeError):
        decode_dataset(encode_dataset(nested(100), EXPLICIT), IMPLICIT)


def test_nesting_at_the_limit_is_decoded() -> None:
    ds = decode_dataset(encode_dataset(nested(MAX_DEPTH), IMPLICIT), IMPLICIT)
    assert ds.PerformedProcedureStepStatus == "IN PROGRESS"


@pytest.mark.parametrize("depth", [100, 220])
async def test_mpps_refuses_a_too_deep_n_create_and_stores_nothing(
        tmp_path: Path, depth: int) -> None:
    async with running_scp(tmp_path) as scp:
        ae = AE("CT1")
        ae.add_requested_context(MPPS)
        assoc = await ae.associate("127.0.0.1", scp.server.port, ae_title="ARCHIVE")
        try:
            uid = str(generate_uid())
            status, _ = await assoc.send_n_create(nested(depth), MPPS, uid)
            assert status.Status == 0x0213  # resource limitation: refused on arrival
            status, _ = await assoc.send_n_get(None, MPPS, uid)
            assert status.Status == 0x0112  # nothing was stored
            good = str(generate_uid())
            status, _ = await assoc.send_n_create(nested(MAX_DEPTH - 1), MPPS, good)
            assert status.Status == 0x0000
            status, reply = await assoc.send_n_get(None, MPPS, good)
            assert status.Status == 0x0000 and reply is not None
            status, _ = await assoc.send_n_set(nested(depth), MPPS, good)
            assert status.Status == 0x0213
        finally:
            await assoc.release()

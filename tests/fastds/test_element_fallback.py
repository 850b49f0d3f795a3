"""When pydicom's DataElement is not made by plain attribute stores, nothing changes
but the speed: the decoder leaves the data set to pydicom, and status Datasets'
elements get a ready ``__dict__``."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from aiodimse import requests
from aiodimse.datasets import decode_dataset, encode_dataset
from aiodimse.dimse.messages import NActionRSP
from aiodimse.fastds import DecodedDataset, _proto, elements_by_stores

IMPLICIT = "1.2.840.10008.1.2"


@pytest.fixture
def foreign_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    assert elements_by_stores()  # the installed pydicom: the fast construction
    monkeypatch.setattr(_proto, "_by_stores", [False])
    monkeypatch.setattr(requests, "_STATUS_BUILDERS", {})


@pytest.mark.usefixtures("foreign_elements")
def test_the_decoder_declines_and_pydicom_decodes() -> None:
    ds = Dataset()
    ds.TransactionUID = "1.2.3.4"
    ds.PatientID = "ABC"
    got = decode_dataset(encode_dataset(ds, IMPLICIT), IMPLICIT)
    assert type(got) is not DecodedDataset  # pydicom's own reader made it
    assert got == ds


@pytest.mark.usefixtures("foreign_elements")
def test_status_elements_get_a_ready_dict_and_the_same_content() -> None:
    rsp = NActionRSP(
        MessageIDBeingRespondedTo=3, Status=0x0107, AffectedSOPClassUID="1.2.840.10008.1.20.1",
        AffectedSOPInstanceUID="1.2.840.10008.1.20.1.1", ActionTypeID=1,
    )  # fmt: skip
    status = requests.status_dataset(rsp)
    expected = Dataset()
    expected.Status = 0x0107
    expected.AffectedSOPClassUID = "1.2.840.10008.1.20.1"
    expected.AffectedSOPInstanceUID = "1.2.840.10008.1.20.1.1"
    expected.ActionTypeID = 1
    assert status == expected
    for elem in expected:
        assert list(vars(status[elem.tag]).items()) == list(vars(elem).items())

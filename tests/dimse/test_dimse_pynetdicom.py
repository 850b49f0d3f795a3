"""Interoperability with pynetdicom's DIMSE message classes, in both directions.

pynetdicom -> aiodimse: pynetdicom builds the message and fragments it with
``encode_msg``; its PDVs go through our MessageAssembler. aiodimse -> pynetdicom:
our ``encode_message`` output is split into PDVs and fed to pynetdicom's
``decode_msg``. The command sets are also compared byte for byte.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from pynetdicom import dimse_messages as pm
from pynetdicom import dimse_primitives as pp
from pynetdicom.dsutils import encode as pyn_encode
from pynetdicom.pdu_primitives import P_DATA

from aiodimse.dimse import (
    MESSAGE_CLASSES,
    DIMSEMessage,
    MessageAssembler,
    encode_command,
    encode_message,
)

from ._helpers import example_message, split_pdus

CASES = sorted(MESSAGE_CLASSES.values(), key=lambda c: c.command_field)
DATASET = b"\x08\x00\x16\x00\x1a\x00\x00\x001.2.840.10008.5.1.4.1.1.2\x00" * 40  # 1360 bytes


def pyn_names(cls: type[DIMSEMessage]) -> tuple[str, str]:
    """(pynetdicom message class name, keyword-list key) for one of ours."""
    name = pm._MESSAGE_TYPES[cls.command_field][0]
    return name.replace("-", "_"), name


def pyn_fields(cls: type[DIMSEMessage]) -> list[str]:
    """Our fields that pynetdicom's message type also carries."""
    keywords = pm._COMMAND_SET_KEYWORDS[pyn_names(cls)[1]]
    return [n for n, _vr, _m in cls._field_specs if n in keywords]


def our_message(cls: type[DIMSEMessage]) -> DIMSEMessage:
    full = example_message(cls)
    wanted = pyn_fields(cls)
    return cls(**{n: getattr(full, n) for n in wanted})


def carries_dataset(cls: type[DIMSEMessage]) -> bool:
    return cls.dataset_allowed and pyn_names(cls)[0] in pm._DATASET_KEYWORDS


def pyn_message(message: DIMSEMessage, dataset: bytes | None) -> Any:
    cls_name, _ = pyn_names(type(message))
    primitive_name = cls_name.rsplit("_", 1)[0]
    primitive = getattr(pp, primitive_name)()
    for name in pyn_fields(type(message)):
        value = getattr(message, name)
        if value is not None:
            setattr(primitive, name, list(value) if isinstance(value, tuple) else value)
    if dataset is not None:
        setattr(primitive, pm._DATASET_KEYWORDS[cls_name], io.BytesIO(dataset))
    msg = getattr(pm, cls_name)()
    msg.primitive_to_message(primitive)
    return msg


def compare_with_primitive(message: DIMSEMessage, primitive: Any) -> None:
    for name in pyn_fields(type(message)):
        ours = getattr(message, name)
        theirs = getattr(primitive, name)
        if isinstance(ours, tuple):
            # pynetdicom's C-service primitives hold one Offending Element, not a list
            theirs = [theirs] if isinstance(theirs, int) else theirs
            assert [int(t) for t in theirs] == list(ours), name
        else:
            assert theirs == ours, name


@pytest.mark.parametrize("cls", CASES, ids=lambda c: c.__name__)
def test_command_bytes_identical_to_pynetdicom(cls: type[DIMSEMessage]) -> None:
    with_ds = carries_dataset(cls)
    message = our_message(cls)
    theirs = pyn_message(message, DATASET if with_ds else None)
    assert encode_command(message, has_dataset=with_ds) == pyn_encode(
        theirs.command_set, True, True
    )


@pytest.mark.parametrize("max_pdu", [0, 64, 4096, 16384])
@pytest.mark.parametrize("cls", CASES, ids=lambda c: c.__name__)
def test_pynetdicom_to_aiodimse(cls: type[DIMSEMessage], max_pdu: int) -> None:
    with_ds = carries_dataset(cls)
    message = our_message(cls)
    theirs = pyn_message(message, DATASET if with_ds else None)
    assembler = MessageAssembler(accepted_context_ids=[3])
    received = []
    for pdata in theirs.encode_msg(3, max_pdu):
        for context_id, value in pdata.presentation_data_value_list:
            result = assembler.feed_pdv(context_id, value[0], memoryview(value)[1:])
            if result is not None:
                received.append(result)
    assert len(received) == 1
    (result,) = received
    assert result.error is None
    assert result.context_id == 3
    assert result.message == message
    if with_ds:
        assert result.dataset is not None and bytes(result.dataset) == DATASET
    else:
        assert result.dataset is None


@pytest.mark.parametrize("pack", [False, True])
@pytest.mark.parametrize("max_pdu", [0, 64, 4096])
@pytest.mark.parametrize("cls", CASES, ids=lambda c: c.__name__)
def test_aiodimse_to_pynetdicom(cls: type[DIMSEMessage], max_pdu: int, pack: bool) -> None:
    with_ds = carries_dataset(cls)
    message = our_message(cls)
    stream = encode_message(
        5,
        encode_command(message, has_dataset=with_ds),
        DATASET if with_ds else None,
        max_pdu,
        pack_command_with_dataset=pack,
    )
    decoder = pm.DIMSEMessage()
    complete = False
    for _length, pdvs in split_pdus(stream):
        assert not complete
        pdata = P_DATA()
        # pynetdicom's setter wants [id, bytes] lists despite its tuple annotation.
        value: Any = [[ctx, bytes([control]) + fragment] for ctx, control, fragment in pdvs]
        pdata.presentation_data_value_list = value
        complete = decoder.decode_msg(pdata)
    assert complete
    assert type(decoder).__name__ == pyn_names(cls)[0]
    primitive = decoder.message_to_primitive()
    assert primitive._context_id == 5
    compare_with_primitive(message, primitive)
    if with_ds:
        dataset_keyword = pm._DATASET_KEYWORDS[pyn_names(cls)[0]]
        assert getattr(primitive, dataset_keyword).getvalue() == DATASET

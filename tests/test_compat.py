"""aiodimse.compat: each private name taken away, the fallback gives the same answers.

Run on every supported Python (tests/run.sh), so a name that moves in a new Python or
pydicom shows up here, and the fallback that would then be used is known to work.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import types
from pathlib import Path
from typing import Any

import pydicom.config
import pydicom.datadict
import pydicom.tag
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from aiodimse import association, association_log, compat, establishment, requests
from aiodimse.aio import listener as listener_module
from aiodimse.aio.eager import EAGER
from aiodimse.aio.listener import DirectListener
from aiodimse.cli.config import load_toml
from aiodimse.datasets import decode_dataset, encode_dataset
from aiodimse.dimse.messages import NActionRSP
from aiodimse.fastds import DecodedDataset, _proto, decoder, new_dataset, try_decode, try_encode

from .aio._helpers import bounded, make_scu_ae, serving

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
UIDS = [b"1.2.840.10008.1.1", b"0", b"1.0.2", b"1.02", b"01.2", b"1..2", b"1.2.", b".1",
        b"1.2a", b"1" * 70, b"1.2.3" * 30 + b"x", b"9.99999999999999999999.0"]


# ---------------------------------------------------------------- Python versions

def test_possessive_quantifiers_are_known_by_version() -> None:
    assert compat.POSSESSIVE_RE is (sys.version_info >= (3, 11))


def test_the_uid_pattern_without_possessive_quantifiers_matches_the_same() -> None:
    plain = re.compile(rb"(?:[1-9][0-9]*|0)(?:\.(?:[1-9][0-9]*|0))*")
    for uid in UIDS:
        assert (decoder._uid_one(uid) is None) is (plain.fullmatch(uid) is None), uid


def test_toml_reads_on_every_version(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text('[server]\nae_title = "ARCHIVE"\nport = 11112\n')
    assert load_toml(path) == {"server": {"ae_title": "ARCHIVE", "port": 11112}}
    assert compat.tomllib.loads("a = [1, 2]") == {"a": [1, 2]}


# ---------------------------------------------------------------- asyncio

async def test_selector_loops_give_their_transport_maker() -> None:
    loop = asyncio.get_running_loop()
    assert compat.socket_transport_maker(loop) == loop._make_socket_transport  # type: ignore[attr-defined]


def test_a_loop_without_the_maker_or_with_another_signature_gets_none() -> None:
    class NoMaker(asyncio.SelectorEventLoop):
        _make_socket_transport = None  # type: ignore[assignment]

    class OtherSignature(asyncio.SelectorEventLoop):
        def _make_socket_transport(self, protocol: Any, sock: Any) -> None:  # type: ignore[override]
            raise AssertionError("never called")

    for cls in (NoMaker, OtherSignature):
        loop = cls()
        try:
            assert compat.socket_transport_maker(loop) is None
        finally:
            loop.close()


async def test_without_the_maker_the_server_serves_through_create_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(listener_module, "socket_transport_maker", lambda loop: None)
    async with (
        serving() as server,
        make_scu_ae().associate("127.0.0.1", server.port) as assoc,
    ):
        status = await bounded(assoc.send_c_echo())
        assert not any(isinstance(x, DirectListener) for x in server._listeners)
    assert status.Status == 0x0000


def test_task_switch_is_there_where_the_eager_start_needs_it() -> None:
    switch = compat.task_switch()
    if sys.version_info[:2] == (3, 11):
        assert switch is not None and EAGER
    # whatever the version, each missing or changed name means no switch
    names = {"_enter_task": lambda loop, task: None, "_leave_task": lambda loop, task: None,
             "_current_tasks": {}}
    assert compat.task_switch(types.SimpleNamespace(**names)) is not None
    for missing in names:
        partial = {k: v for k, v in names.items() if k != missing}
        assert compat.task_switch(types.SimpleNamespace(**partial)) is None
    assert compat.task_switch(types.SimpleNamespace(**{**names, "_current_tasks": []})) is None


# ---------------------------------------------------------------- logging

def test_the_level_cache_answers_as_is_enabled_for_and_follows_level_changes() -> None:
    logger = logging.getLogger("aiodimse.test_compat.cache")
    get = compat.level_cache_get(logger)
    assert get is not compat._no_answer  # the installed Python has the cache
    try:
        logger.setLevel(logging.INFO)
        assert get(logging.DEBUG) is None  # cleared by setLevel: ask isEnabledFor
        assert logger.isEnabledFor(logging.DEBUG) is False
        assert get(logging.DEBUG) is False
        logger.setLevel(logging.DEBUG)
        assert get(logging.DEBUG) is None
        assert logger.isEnabledFor(logging.DEBUG) is True
        assert get(logging.DEBUG) is True
    finally:
        logger.setLevel(logging.NOTSET)


def test_a_logger_without_the_cache_always_says_ask() -> None:
    class Plain(logging.Logger):
        def __getattribute__(self, name: str) -> Any:
            if name == "_cache":
                raise AttributeError(name)
            return super().__getattribute__(name)

    get = compat.level_cache_get(Plain("plain"))
    assert get(logging.DEBUG) is None and get(logging.INFO) is None


@pytest.mark.parametrize("cached", [True, False])
async def test_debug_logging_of_messages_is_the_same_with_or_without_the_cache(
    cached: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    if not cached:
        monkeypatch.setattr(association, "debug_cached", compat._no_answer)
        monkeypatch.setattr(association_log, "debug_cached", compat._no_answer)
        monkeypatch.setattr(establishment, "debug_cached", compat._no_answer)
    caplog.set_level(logging.DEBUG, logger="aiodimse.association")
    async with (
        serving() as server,
        make_scu_ae().associate("127.0.0.1", server.port) as assoc,
    ):
        await bounded(assoc.send_c_echo())
    lines = [r.getMessage() for r in caplog.records if r.name == "aiodimse.association"]
    assert any(line.startswith("sent CEchoRQ") for line in lines), lines
    assert any(line.startswith("received CEchoRSP") for line in lines), lines


# ---------------------------------------------------------------- pydicom

def test_the_dictionary_vrs_are_the_same_without_the_private_module() -> None:
    private = compat.dictionary_vrs()
    assert len(private) > 4000
    assert compat.dictionary_vrs(module=object()) == private
    # neither table: the public keyword_dict, less only tags that have no keyword
    public = compat.dictionary_vrs(module=object(), datadict=object())
    assert all(private[tag] == vr for tag, vr in public.items())
    for tag in private.keys() - public.keys():
        assert pydicom.datadict.keyword_for_tag(tag) == ""


def test_the_fast_dictionary_vr_and_the_public_one_agree() -> None:
    fast = compat._dictionary_vr_getter()
    public = compat._dictionary_vr_getter(object())
    assert public is compat._public_vr
    tags = [*list(pydicom.datadict.DicomDictionary)[::7], 0x60000010, 0x60020010, 0x50000005]
    for tag in tags:
        assert fast(tag) == public(tag), hex(tag)
    for unknown in (0x00090010, 0x7FE10010, 0x00011234):
        with pytest.raises(KeyError):
            fast(unknown)
        with pytest.raises(KeyError):
            public(unknown)


def test_the_lut_descriptor_tags_are_pydicoms() -> None:
    assert compat._lut_descriptor_tags() == compat._LUT_DESCRIPTORS
    assert compat._lut_descriptor_tags(object()) == compat._LUT_DESCRIPTORS
    assert frozenset(pydicom.tag._LUT_DESCRIPTOR_TAGS) == compat.LUT_DESCRIPTOR_TAGS


def _lut_dataset() -> Dataset:
    ds = Dataset()
    ds.LUTDescriptor = [4096, 0, 12]
    ds.RedPaletteColorLookupTableDescriptor = [256, 0, 16]
    ds.PatientID = "X"
    return ds


@pytest.mark.parametrize("syntax", [IMPLICIT, EXPLICIT])
def test_decoding_with_the_fallback_dictionary_gives_the_same_dataset(
    syntax: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = _lut_dataset()
    ds.StudyInstanceUID = "1.2.3.4"
    ds.Rows = 512
    ds.ReferencedSOPSequence = Sequence([Dataset()])
    ds.ReferencedSOPSequence[0].ReferencedSOPInstanceUID = "1.2.3.5"
    data = encode_dataset(ds, syntax)
    expected = decode_dataset(data, syntax)
    monkeypatch.setattr(decoder, "_VR_OF", compat.dictionary_vrs(module=object(),
                                                                 datadict=object()))
    monkeypatch.setattr(decoder, "_TAG_INFO", {})
    monkeypatch.setattr(decoder, "_dictionary_vr_fast", compat._public_vr)
    monkeypatch.setattr(decoder, "_LUT_DESCRIPTOR_TAGS", compat._LUT_DESCRIPTORS)
    got = decode_dataset(data, syntax)
    assert type(got) is DecodedDataset
    assert got == expected == ds
    assert encode_dataset(got, syntax) == data


def test_the_future_flag_falls_back_to_what_future_behavior_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert compat.FUTURE_FLAG == "_use_future"
    fallback = compat._future_flag(types.SimpleNamespace(INVALID_KEYWORD_BEHAVIOR="WARN"))
    assert fallback == "INVALID_KEYWORD_BEHAVIOR"
    monkeypatch.setattr(_proto, "FUTURE_FLAG", fallback)
    try:
        for future in (True, False):
            pydicom.config.future_behavior(future)
            made = new_dataset()
            assert set(vars(made)) | set(_proto._snapshot["members"]) == set(vars(Dataset()))
    finally:
        pydicom.config.future_behavior(False)


def test_the_reading_mode_attribute_falls_back_to_the_property() -> None:
    assert compat.READING_MODE_ATTRIBUTE == "_reading_validation_mode"
    settings = types.SimpleNamespace(reading_validation_mode=1)
    assert compat._reading_mode_attribute(settings) == "reading_validation_mode"


def _status() -> NActionRSP:
    return NActionRSP(
        MessageIDBeingRespondedTo=3, Status=0x0107, AffectedSOPClassUID="1.2.840.10008.1.20.1",
        AffectedSOPInstanceUID="1.2.840.10008.1.20.1.1", ActionTypeID=1,
    )  # fmt: skip


def test_status_datasets_are_the_same_through_the_public_reading_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = requests.status_dataset(_status())
    monkeypatch.setattr(requests, "READING_MODE_ATTRIBUTE", "reading_validation_mode")
    monkeypatch.setattr(requests, "_STATUS_BUILDERS", {})
    got = requests.status_dataset(_status())
    assert got == expected and got.Status == 0x0107
    for elem in expected:
        assert got[elem.tag].validation_mode == elem.validation_mode


def test_the_layout_probe_knows_pydicom_and_notices_a_moved_member() -> None:
    assert compat.pydicom_layout_ok()

    class Renamed(Dataset):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.__dict__["_charset_read"] = self.__dict__.pop("_read_charset")

    assert not compat._probe_layout(dataset=Renamed)
    assert not compat._probe_layout(multivalue=list)  # values kept in another type


@pytest.fixture
def foreign_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if pydicom kept its objects' state under other names."""
    monkeypatch.setattr(compat, "_layout", [False])
    monkeypatch.setattr(_proto, "_snapshot", {})
    monkeypatch.setattr(requests, "_STATUS_BUILDERS", {})


@pytest.mark.usefixtures("foreign_layout")
@pytest.mark.parametrize("syntax", [IMPLICIT, EXPLICIT])
def test_a_foreign_layout_sends_every_data_set_through_pydicom(syntax: str) -> None:
    ds = _lut_dataset()
    ds.ReferencedSOPSequence = Sequence([Dataset()])
    ds.ReferencedSOPSequence[0].ReferencedSOPInstanceUID = "1.2.3.5"
    assert try_encode(ds, syntax == IMPLICIT) is None
    data = encode_dataset(ds, syntax)
    assert try_decode(data, syntax == IMPLICIT) is None
    got = decode_dataset(data, syntax)
    assert type(got) is Dataset and got == ds


def test_a_foreign_layout_encodes_and_decodes_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = _lut_dataset()
    fast = {s: encode_dataset(ds, s) for s in (IMPLICIT, EXPLICIT)}
    decoded = {s: decode_dataset(fast[s], s) for s in fast}
    monkeypatch.setattr(compat, "_layout", [False])
    monkeypatch.setattr(_proto, "_snapshot", {})
    for syntax, data in fast.items():
        assert encode_dataset(ds, syntax) == data
        assert decode_dataset(data, syntax) == decoded[syntax]


@pytest.mark.usefixtures("foreign_layout")
def test_a_foreign_layout_builds_status_datasets_with_pydicoms_constructors() -> None:
    status = requests.status_dataset(_status())
    assert type(status) is Dataset
    expected = Dataset()
    expected.Status = 0x0107
    expected.AffectedSOPClassUID = "1.2.840.10008.1.20.1"
    expected.AffectedSOPInstanceUID = "1.2.840.10008.1.20.1.1"
    expected.ActionTypeID = 1
    assert status == expected
    assert new_dataset() == Dataset() and type(new_dataset()) is Dataset

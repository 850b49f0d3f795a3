"""The encoder's loop for reply data sets (strings, texts, person names) against pydicom.

Issue 25: handlers answer with Datasets of these VRs (N-GET, N-CREATE, Action Replies),
which the encoder now writes itself instead of handing person names to pydicom's
element writer and text to a codec looked up by name each time. The bytes must stay
pydicom's, in both syntaxes, under any character set, in sequence items too.
"""

from __future__ import annotations

import codecs
import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from aiodimse.fastds import encoder, try_encode
from benchmarks import replies
from tests.examples import examples

from .test_fastds_equivalence import SYNTAXES, pydicom_encode

# values that break VR rules make pydicom warn as it stores them: not what is tested here
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# (tag, VR): strings, texts and person names of the MPPS and Action Reply kind
_STRING_TAGS = ((0x00080060, "CS"), (0x00400244, "DA"), (0x00400245, "TM"),
                (0x00400241, "AE"), (0x00100040, "CS"), (0x00080020, "DA"))
_TEXT_TAGS = ((0x00100020, "LO"), (0x00400253, "SH"), (0x00404000, "ST"),
              (0x00400280, "ST"), (0x00081030, "LO"), (0x00200010, "SH"))
_PN_TAGS = ((0x00100010, "PN"), (0x00081050, "PN"), (0x00081070, "PN"))
_CHARSETS = (None, "ISO_IR 100", "ISO_IR 192", ["ISO_IR 100"], "ISO_IR 6",
             ["", "ISO 2022 IR 100"], "ISO_IR 144")
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\\\0"), max_size=9)
_ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E,
                               exclude_characters="\\"), max_size=9)
_NAMES = st.one_of(
    st.lists(_TEXT.map(lambda s: s.replace("=", "").replace("^", "")), max_size=3).map(
        "^".join),
    st.just(""),
    st.just("Doe^Jane^M"),
    st.just("Yamada^Tarou=山田^太郎"),
)


@st.composite
def _reply_datasets(draw: st.DrawFn, depth: int = 0) -> Dataset:
    ds = Dataset()
    charset = draw(st.sampled_from(_CHARSETS))
    if charset is not None:
        ds.SpecificCharacterSet = charset
    for tag, vr in draw(st.lists(st.sampled_from(_STRING_TAGS), unique=True, max_size=3)):
        ds.add_new(tag, vr, draw(st.one_of(_ASCII, _TEXT, st.just(""), st.just(None))))
    for tag, vr in draw(st.lists(st.sampled_from(_TEXT_TAGS), unique=True, max_size=3)):
        value = draw(st.one_of(_TEXT, st.just(""), st.lists(_ASCII, min_size=2, max_size=3)))
        ds.add_new(tag, vr, value)
    for tag, vr in draw(st.lists(st.sampled_from(_PN_TAGS), unique=True, max_size=2)):
        value = draw(st.one_of(_NAMES, st.lists(_NAMES, min_size=2, max_size=3),
                               st.just(None)))
        ds.add_new(tag, vr, value)
    if depth < 2 and draw(st.booleans()):
        ds.add_new(0x00400340, "SQ",
                   Sequence(draw(st.lists(_reply_datasets(depth + 1), max_size=2))))
    return ds


@settings(max_examples=examples(400), deadline=None)
@given(ds=_reply_datasets())
def test_string_text_and_person_name_datasets_match_pydicom(ds: Dataset) -> None:
    """Whatever the encoder writes itself is pydicom's bytes (None: pydicom writes)."""
    for implicit in SYNTAXES:
        theirs_from = copy.deepcopy(ds)
        try:
            theirs: bytes | None = pydicom_encode(theirs_from, implicit)
        except Exception:  # pydicom cannot write it (a value its charset cannot encode)
            theirs = None
        ours = try_encode(ds, implicit)
        if theirs is None:
            assert ours is None
        else:
            assert ours in (None, theirs)
            # and what was left in the Dataset (person names keep their bytes) is what
            # pydicom's writer leaves: a second encoding by pydicom gives the same
            assert pydicom_encode(ds, implicit) == theirs


@pytest.mark.parametrize("implicit", SYNTAXES)
def test_the_benchmark_replies_are_written_by_the_encoder_as_pydicom_does(
    implicit: bool,
) -> None:
    """Row 8's replies, person names and texts included, take no fallback to pydicom."""
    instance = replies.stored_instance()
    reply = Dataset()
    for tag in replies.REQUESTED_TAGS:
        reply[tag] = instance[tag]
    for ds in (replies.action_reply(), reply, replies.mpps_attributes(), instance):
        expected = pydicom_encode(copy.deepcopy(ds), implicit)
        assert try_encode(ds, implicit) == expected
        assert try_encode(ds, implicit) == expected  # again, from the caches
    calls: list[object] = []
    original = encoder._Encoder.delegate

    def counted(self: encoder._Encoder, elem: object, charset: object) -> bytes:
        calls.append(elem)
        return original(self, elem, charset)  # type: ignore[arg-type]

    try:
        encoder._Encoder.delegate = counted  # type: ignore[method-assign]
        assert try_encode(reply, implicit) is not None
    finally:
        encoder._Encoder.delegate = original  # type: ignore[method-assign]
    assert calls == []  # no element handed to pydicom's writer


def test_text_is_encoded_by_a_name_of_the_same_codec() -> None:
    """The fast spellings are the codecs pydicom's encoding names stand for."""
    for name, fast in encoder._FAST_TEXT_ENCODINGS.items():
        assert codecs.lookup(name).name == codecs.lookup(fast).name


def test_a_person_name_value_given_as_bytes_is_left_to_pydicom() -> None:
    ds = Dataset()
    ds.add_new(0x00100010, "PN", PersonName(b"Doe^Jane"))
    ds.PatientID = "X1"
    for implicit in SYNTAXES:
        assert try_encode(ds, implicit) == pydicom_encode(copy.deepcopy(ds), implicit)

"""``record_from_start`` against pydicom: whatever it reads from a data set's first
bytes is what ``record_values`` makes of the same bytes read by pydicom, and it
reads the plain case (else the writer would always fall back to the file)."""

from __future__ import annotations

import struct
import warnings
from io import BytesIO

from hypothesis import given
from hypothesis import strategies as st
from pydicom.filereader import read_dataset

from aiodimse.archive.record_head import record_from_start
from aiodimse.store.records import KEYS, record_values

_WANTED = sorted((k.tag, k.vr) for k in KEYS.values() if not k.computed)
_LAST = max(tag for tag, _ in _WANTED)
_PLAIN = "ABCXYZabz0129 .^:-+"  # printable ASCII: what the fast path reads
_ODD = "\\=\x00\x1b\té"  # separators, padding, escape, control and non-ASCII


def _element(tag: int, vr: str, value: bytes, implicit: bool) -> bytes:
    if implicit:
        return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value
    if vr in ("SQ", "OB", "UN", "UT"):
        return struct.pack("<HH2s2xL", tag >> 16, tag & 0xFFFF, vr.encode(),
                           len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


@st.composite
def _datasets(draw: st.DrawFn) -> tuple[bytes, bool, bool]:
    """(a data set's bytes, implicit VR, plain: to be read here): some wanted
    elements, maybe a character set and an element the index does not want (a
    defined-length sequence), then one past the last wanted (as pixel data)."""
    implicit, plain = draw(st.booleans()), draw(st.booleans())
    alphabet = _PLAIN if plain else _PLAIN + _ODD
    elements: dict[int, bytes] = {}
    for tag, vr in draw(st.lists(st.sampled_from(_WANTED), unique=True)):
        raw = draw(st.text(alphabet, max_size=14)).encode("latin-1")
        if vr == "IS" and (plain or draw(st.booleans())):
            raw = str(draw(st.integers(-(2**31), 2**31 - 1))).encode()
        if len(raw) % 2:
            raw += b"\x00" if vr == "UI" else b" "
        elements[tag] = _element(tag, vr, raw, implicit)
    charset = draw(st.sampled_from([None, b"ISO_IR 100", b"ISO_IR 192", b"ISO_IR 13",
                                    b"ISO 2022 IR 87", b"\\ISO 2022 IR 100"]))
    if charset is not None:
        elements[0x00080005] = _element(0x00080005, "CS", charset, implicit)
        plain = plain and charset in (b"ISO_IR 100", b"ISO_IR 192")
    if draw(st.booleans()):  # Referenced Study Sequence, one empty item
        elements[0x00081110] = _element(0x00081110, "SQ", b"\xfe\xff\x00\xe0\0\0\0\0",
                                        implicit)
    past = _element(_LAST + 1, "LO", b"AFTER ", implicit)
    return b"".join(elements[tag] for tag in sorted(elements)) + past, implicit, plain


def _pydicom(data: bytes, implicit: bool) -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings on odd values
        ds = read_dataset(BytesIO(data), implicit, True,
                          stop_when=lambda tag, vr, length: bool(tag > _LAST))
        return record_values(ds)


@given(_datasets())
def test_what_it_reads_is_what_pydicom_reads(case: tuple[bytes, bool, bool]) -> None:
    data, implicit, plain = case
    fast = record_from_start(data, implicit)
    assert (fast is not None) >= plain  # the plain case is read here
    if fast is not None:
        assert fast == _pydicom(data, implicit)


def test_bytes_ending_before_the_last_wanted_element_are_not_read() -> None:
    data = _element(0x00080016, "UI", b"1.2.3\x00", False) + \
        _element(0x00080018, "UI", b"1.2.3.4\x00", False)
    assert record_from_start(data, False) is None  # (0020,0013) may follow
    past = _element(_LAST + 1, "LO", b"AFTER ", False)
    assert record_from_start(data + past, False) == {"SOPClassUID": "1.2.3",
                                                     "SOPInstanceUID": "1.2.3.4"}
    assert record_from_start(data + past[:6], False) is None  # its header cut short


def test_undefined_length_or_another_vr_is_left_to_pydicom() -> None:
    past = _element(_LAST + 1, "LO", b"AFTER ", False)
    undefined = struct.pack("<HH2s2xL", 0x0008, 0x1110, b"SQ", 0xFFFFFFFF)
    assert record_from_start(undefined + past, False) is None
    as_un = _element(0x00100020, "UN", b"PID1", False)
    assert record_from_start(as_un + past, False) is None
    assert record_from_start(_element(0x00100020, "LO", b"PID1", False) + past,
                             False) == {"PatientID": "PID1"}

"""What the archive index holds per instance, and the query it answers, free of SQL.

``KEYS`` is the one table of the attributes the index keeps for Query/Retrieve
(PS3.4 C.6: the unique and required keys of each level, and the counts it
computes); the indexer, the writer, the query engine and each backend read it.
Values are kept as text, normalised once by ``normalise`` (the same function
readies a query's values), so a backend compares strings only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "PATIENT", "STUDY", "SERIES", "IMAGE", "LEVELS", "Key", "KEYS", "RECORD_TAGS",
    "InstanceRecord", "Term", "Condition", "IndexQuery", "RetrieveItem", "Row",
    "normalise", "record_values",
]

PATIENT, STUDY, SERIES, IMAGE = "PATIENT", "STUDY", "SERIES", "IMAGE"
LEVELS = (PATIENT, STUDY, SERIES, IMAGE)


@dataclass(frozen=True, slots=True)
class Key:
    """One attribute the index answers: its tag, VR, level, and whether it is the
    level's unique key, computed from the levels below (a count), or multi-valued."""

    keyword: str
    tag: int
    vr: str
    level: str
    unique: bool = False
    computed: bool = False
    multi: bool = False


def _k(keyword: str, tag: int, vr: str, level: str, **kw: bool) -> tuple[str, Key]:
    return keyword, Key(keyword, tag, vr, level, **kw)


KEYS: dict[str, Key] = dict([
    _k("PatientName", 0x00100010, "PN", PATIENT),
    _k("PatientID", 0x00100020, "LO", PATIENT, unique=True),
    _k("PatientBirthDate", 0x00100030, "DA", PATIENT),
    _k("PatientSex", 0x00100040, "CS", PATIENT),
    _k("NumberOfPatientRelatedStudies", 0x00201200, "IS", PATIENT, computed=True),
    _k("NumberOfPatientRelatedSeries", 0x00201202, "IS", PATIENT, computed=True),
    _k("NumberOfPatientRelatedInstances", 0x00201204, "IS", PATIENT, computed=True),
    _k("StudyDate", 0x00080020, "DA", STUDY),
    _k("StudyTime", 0x00080030, "TM", STUDY),
    _k("AccessionNumber", 0x00080050, "SH", STUDY),
    _k("StudyID", 0x00200010, "SH", STUDY),
    _k("StudyInstanceUID", 0x0020000D, "UI", STUDY, unique=True),
    _k("ReferringPhysicianName", 0x00080090, "PN", STUDY),
    _k("StudyDescription", 0x00081030, "LO", STUDY),
    _k("ModalitiesInStudy", 0x00080061, "CS", STUDY, computed=True, multi=True),
    _k("SOPClassesInStudy", 0x00080062, "UI", STUDY, computed=True, multi=True),
    _k("NumberOfStudyRelatedSeries", 0x00201206, "IS", STUDY, computed=True),
    _k("NumberOfStudyRelatedInstances", 0x00201208, "IS", STUDY, computed=True),
    _k("Modality", 0x00080060, "CS", SERIES),
    _k("SeriesNumber", 0x00200011, "IS", SERIES),
    _k("SeriesInstanceUID", 0x0020000E, "UI", SERIES, unique=True),
    _k("SeriesDescription", 0x0008103E, "LO", SERIES),
    _k("NumberOfSeriesRelatedInstances", 0x00201209, "IS", SERIES, computed=True),
    _k("InstanceNumber", 0x00200013, "IS", IMAGE),
    _k("SOPInstanceUID", 0x00080018, "UI", IMAGE, unique=True),
    _k("SOPClassUID", 0x00080016, "UI", IMAGE),
    _k("AvailableTransferSyntaxUID", 0x00083002, "UI", IMAGE, computed=True),
])

# The attributes a file is read for (``specific_tags``): the stored keys, and the
# character set their text is decoded with.
RECORD_TAGS = ["SpecificCharacterSet"] + [k.keyword for k in KEYS.values() if not k.computed]


def normalise(vr: str, value: str) -> str:
    """The form a value is kept and compared in: padding stripped; a date without
    the old ``.`` separators; a time without ``:`` and with seconds (``10`` is
    ``100000``); an integer string as its integer; a person name without trailing
    component separators. Query values go through it too (not wildcards)."""
    value = value.strip(" \x00")
    if vr == "DA":
        return value.replace(".", "")
    if vr == "TM":
        value = value.replace(":", "")
        whole, dot, frac = value.partition(".")
        return whole.ljust(6, "0") + dot + frac if whole.isdigit() and len(whole) <= 6 \
            else value
    if vr == "IS":
        try:
            return str(int(value))
        except ValueError:
            return value
    if vr == "PN":
        return value.rstrip("^=")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRecord:
    """One stored instance as indexed: where it is and its Q/R attributes.

    ``attrs`` maps keywords of ``KEYS`` (not the computed ones) to normalised text;
    a missing one is "". Without a Study and Series Instance UID the instance is
    indexed (storage commitment finds it) but no query does. ``mtime_ns`` 0: no
    file stat to remember (the rescan then reads the file once).
    """

    sop_class_uid: str
    sop_instance_uid: str
    path: str
    transfer_syntax: str
    size: int
    mtime_ns: int
    attrs: Mapping[str, str]


def record_values(ds: Any) -> dict[str, str]:
    """The ``InstanceRecord.attrs`` of a pydicom data set (decoded with its own
    character set); an element pydicom cannot read counts as missing."""
    attrs: dict[str, str] = {}
    for key in KEYS.values():
        if key.computed:
            continue
        try:
            elem = ds.get(key.keyword)
        except Exception:  # a malformed value in a peer's file: missing, not fatal
            continue
        if elem is None or elem == "":
            continue
        text = "\\".join(str(v) for v in elem) if _multi(elem) else str(elem)
        attrs[key.keyword] = normalise(key.vr, text)
    return attrs


def _multi(value: object) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


MatchKind = Literal["exact", "pattern", "range"]


@dataclass(frozen=True, slots=True)
class Term:
    """One way a value may match: ``exact`` (``a``), ``pattern`` (``a`` with DICOM's
    ``*`` and ``?``), or ``range`` (``a <= value <= b``, "" for an open end)."""

    kind: MatchKind
    a: str
    b: str = ""


@dataclass(frozen=True, slots=True)
class Condition:
    """A key of the query with a value: it matches when any of ``terms`` does
    (several for a UID list or a multi-valued key). ``fold``: compare ignoring
    ASCII case (person names)."""

    keyword: str
    terms: tuple[Term, ...]
    fold: bool = False


@dataclass(frozen=True, slots=True)
class IndexQuery:
    """What the backend answers: entities of ``level`` meeting every condition,
    each with the values of ``keys`` (keywords of ``KEYS`` at the level or above)."""

    level: str
    conditions: tuple[Condition, ...]
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RetrieveItem:
    """One instance to send for a C-GET or C-MOVE."""

    sop_class_uid: str
    sop_instance_uid: str
    path: str
    transfer_syntax: str


Row = Mapping[str, str]
"""One match: keyword -> text (a multi-valued one joined with backslashes)."""

"""The Query/Retrieve information models (PS3.4 C.6): their SOP classes and levels,
and the errors a request's identifier earns.

Patient Root and Study Root, each for FIND, GET and MOVE. The retired Patient/Study
Only model is not offered. ``QueryError.status`` is what the SCP answers:

- ``IdentifierMismatch`` (0xA900 Identifier does not match SOP Class): the shape
  of the identifier is wrong for the model: no or an unknown Query/Retrieve Level,
  a key of a level below it, a unique key above it missing, empty or not one value
  (C-FIND; C-GET/C-MOVE: the unique keys down to the level).
- ``UnableToProcess`` (0xC000 Unable to process): the shape is right but a value
  cannot be matched: a date, time or integer that is none, a range on a key that
  has no ranges, a UID list holding a non-UID, a value pydicom cannot decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from ..store.records import IMAGE, PATIENT, SERIES, STUDY

__all__ = [
    "FIND", "GET", "MOVE", "QueryModel", "PATIENT_ROOT_FIND", "PATIENT_ROOT_GET",
    "PATIENT_ROOT_MOVE", "STUDY_ROOT_FIND", "STUDY_ROOT_GET", "STUDY_ROOT_MOVE", "MODELS",
    "model_for", "QueryError", "IdentifierMismatch", "UnableToProcess",
    "IDENTIFIER_MISMATCH", "UNABLE_TO_PROCESS",
]

FIND: Final = "FIND"
GET: Final = "GET"
MOVE: Final = "MOVE"
Operation = Literal["FIND", "GET", "MOVE"]

IDENTIFIER_MISMATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000


@dataclass(frozen=True, slots=True)
class QueryModel:
    """One Query/Retrieve SOP class: its root, operation and levels (top first)."""

    name: str
    sop_class_uid: str
    root: Literal["PATIENT", "STUDY"]
    operation: Operation

    @property
    def levels(self) -> tuple[str, ...]:
        return (PATIENT, STUDY, SERIES, IMAGE) if self.root == PATIENT else (STUDY, SERIES, IMAGE)

    def level_of(self, key_level: str) -> str:
        """The level a key of ``key_level`` sits at in this model (Study Root has
        the patient's attributes at its study level)."""
        return STUDY if key_level == PATIENT and self.root == STUDY else key_level


PATIENT_ROOT_FIND = QueryModel("Patient Root FIND", "1.2.840.10008.5.1.4.1.2.1.1", "PATIENT", FIND)
PATIENT_ROOT_MOVE = QueryModel("Patient Root MOVE", "1.2.840.10008.5.1.4.1.2.1.2", "PATIENT", MOVE)
PATIENT_ROOT_GET = QueryModel("Patient Root GET", "1.2.840.10008.5.1.4.1.2.1.3", "PATIENT", GET)
STUDY_ROOT_FIND = QueryModel("Study Root FIND", "1.2.840.10008.5.1.4.1.2.2.1", "STUDY", FIND)
STUDY_ROOT_MOVE = QueryModel("Study Root MOVE", "1.2.840.10008.5.1.4.1.2.2.2", "STUDY", MOVE)
STUDY_ROOT_GET = QueryModel("Study Root GET", "1.2.840.10008.5.1.4.1.2.2.3", "STUDY", GET)

MODELS: dict[str, QueryModel] = {m.sop_class_uid: m for m in (
    PATIENT_ROOT_FIND, PATIENT_ROOT_MOVE, PATIENT_ROOT_GET,
    STUDY_ROOT_FIND, STUDY_ROOT_MOVE, STUDY_ROOT_GET)}


def model_for(sop_class_uid: str) -> QueryModel | None:
    """The model of a Query/Retrieve SOP class, None if it is none we offer."""
    return MODELS.get(sop_class_uid)


class QueryError(Exception):
    """An identifier the SCP refuses; ``status`` is the DIMSE status to answer with,
    the message (at most 64 characters) its Error Comment."""

    status = UNABLE_TO_PROCESS

    def __init__(self, comment: str) -> None:
        super().__init__(comment[:64])
        self.comment = comment[:64]


class IdentifierMismatch(QueryError):
    """0xA900: the identifier's shape does not fit the model (see the module)."""

    status = IDENTIFIER_MISMATCH


class UnableToProcess(QueryError):
    """0xC000: a value of the identifier cannot be matched (see the module)."""

    status = UNABLE_TO_PROCESS

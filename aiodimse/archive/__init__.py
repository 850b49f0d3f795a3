"""The archive: received instances written and indexed (``writer``), and the
Query/Retrieve engine answering from the index (``engine``); no networking here,
the C-STORE/C-FIND/C-GET/C-MOVE services call these. docs/archive.md."""

from __future__ import annotations

from .engine import QueryEngine, Retrieval
from .models import (
    MODELS,
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
    IdentifierMismatch,
    QueryError,
    QueryModel,
    UnableToProcess,
    model_for,
)

__all__ = [
    "MODELS", "PATIENT_ROOT_FIND", "PATIENT_ROOT_GET", "PATIENT_ROOT_MOVE",
    "STUDY_ROOT_FIND", "STUDY_ROOT_GET", "STUDY_ROOT_MOVE", "IdentifierMismatch",
    "QueryEngine", "QueryError", "QueryModel", "Retrieval", "UnableToProcess", "model_for",
]

"""Where an instance lives in the archive folder, and what makes a file name safe.

``<root>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``: each UID
is checked as a UID (PS3.5 9.1: digits and dots, no empty or zero-led component,
at most 64 characters) before it names anything, so no value a peer sends can
climb out of the folder (``..``), name a device or hide (``.x``). Files being
received wait in ``<root>/.incoming/`` (same file system: moving one into place is
a rename), under names of our own making.
"""

from __future__ import annotations

from pathlib import Path

from ..dimse.commands import is_valid_uid
from ..store.index import INCOMING

__all__ = ["INCOMING", "SUFFIX", "instance_path", "bad_uid"]

SUFFIX = ".dcm"


def bad_uid(uids: dict[str, str]) -> str | None:
    """The keyword of the first of ``uids`` (keyword -> value) that is no UID."""
    for keyword, uid in uids.items():
        if not is_valid_uid(uid):
            return keyword
    return None


def instance_path(root: Path, study: str, series: str, instance: str) -> Path:
    """The file of an instance; ValueError if a UID is not one."""
    bad = bad_uid({"StudyInstanceUID": study, "SeriesInstanceUID": series,
                   "SOPInstanceUID": instance})
    if bad is not None:
        raise ValueError(f"{bad} is not a UID")
    return root / study / series / (instance + SUFFIX)

"""The status data set a service answers a refusal with, written once for all."""

from __future__ import annotations

from pydicom.dataset import Dataset

__all__ = ["status"]


def status(code: int, comment: str | None = None, offending: int | None = None) -> Dataset:
    """Status ``code`` with an Error Comment (cut to LO's 64 characters) and the
    Offending Element when given."""
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment[:64]
    if offending is not None:
        ds.OffendingElement = [offending]
    return ds

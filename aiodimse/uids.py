"""Our UID root, and new UIDs under it (not under pydicom's root).

A UID we generate (a Transaction UID, an MPPS instance the SCP assigns) names us as
its issuer; pydicom's ``generate_uid()`` default would name pydicom.
"""

from __future__ import annotations

from pydicom.uid import generate_uid

__all__ = ["UID_ROOT", "IMPLEMENTATION_CLASS_UID", "new_uid"]

UID_ROOT = "1.2.826.0.1.3680043.10.1451"
IMPLEMENTATION_CLASS_UID = f"{UID_ROOT}.1"
_GENERATED = f"{UID_ROOT}.2."


def new_uid() -> str:
    """A new, unique UID under our root (64 characters at most, PS3.5 9.1)."""
    return str(generate_uid(prefix=_GENERATED))

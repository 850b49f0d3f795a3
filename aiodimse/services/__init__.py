"""Service-class SCPs built on the handler API: Storage Commitment and MPPS.

Usable as a library (bind ``handlers()`` on any server) and by ``aiodimse serve``.
"""

from __future__ import annotations

from .mpps import MPPS, MPPSSCP
from .quotas import Quotas
from .storage_commitment import (
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    DeliveryPolicy,
    Peer,
    StorageCommitmentSCP,
    build_report,
)

__all__ = [
    "MPPS",
    "MPPSSCP",
    "STORAGE_COMMITMENT",
    "STORAGE_COMMITMENT_INSTANCE",
    "DeliveryPolicy",
    "Peer",
    "Quotas",
    "StorageCommitmentSCP",
    "build_report",
]

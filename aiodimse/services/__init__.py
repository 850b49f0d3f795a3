"""Services as units (``base``) and the service-class SCPs built on them:
Verification, Storage Commitment, MPPS, Storage and Query/Retrieve.

Usable as a library (a ``ServiceSet`` of them, or ``handlers()`` bound on any
server) and by ``aiodimse serve``.
"""

from __future__ import annotations

from .base import Service, ServiceSet, SOPClass
from .delivery import Deliverer, ReportKind, StoredReports
from .mpps import MPPS, MPPSSCP
from .query_retrieve import QueryRetrieveSCP
from .quotas import Quotas
from .storage import StorageSCP
from .storage_commitment import (
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    DeliveryPolicy,
    Peer,
    StorageCommitmentSCP,
    build_report,
)
from .verification import VerificationSCP

__all__ = [
    "MPPS",
    "MPPSSCP",
    "STORAGE_COMMITMENT",
    "STORAGE_COMMITMENT_INSTANCE",
    "Deliverer",
    "DeliveryPolicy",
    "Peer",
    "QueryRetrieveSCP",
    "Quotas",
    "ReportKind",
    "SOPClass",
    "Service",
    "ServiceSet",
    "StorageCommitmentSCP",
    "StorageSCP",
    "StoredReports",
    "VerificationSCP",
    "build_report",
]

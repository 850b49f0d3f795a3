"""Records the store tests write."""

from __future__ import annotations

import json

from aiodimse.store import Commitment, Delivery, MPPSRow

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
STGCMT = "1.2.840.10008.1.20.1"
STGCMT_INSTANCE = "1.2.840.10008.1.20.1.1"


def commitment(uid: str, now: float = 100.0, aet: str = "CT1") -> tuple[Commitment, Delivery]:
    refs = ((CT, f"{uid}.1"),)
    return (Commitment(transaction_uid=uid, calling_aet=aet, refs=refs, received_at=now),
            Delivery(kind="commitment", key=uid, destination=aet, sop_class=STGCMT,
                     sop_instance=STGCMT_INSTANCE, payload=json.dumps(refs), created_at=now,
                     deadline=now + 1000, next_attempt=now))


def event(key: str, destination: str = "RIS", ordering: str | None = "wi-1",
          now: float = 100.0) -> Delivery:
    return Delivery(kind="ups", key=key, destination=destination, sop_class="1.2.3",
                    sop_instance="1.2.3.4", payload="{}", event_type=1, ordering=ordering,
                    created_at=now, deadline=now + 1000, next_attempt=now)


def mpps(uid: str, status: str = "IN PROGRESS", size: int = 10) -> MPPSRow:
    return MPPSRow(sop_instance_uid=uid, status=status,
                   dataset=json.dumps({"x": "y" * size}), calling_aet="CT1")

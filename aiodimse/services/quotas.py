"""Storage quotas of the MPPS, Storage Commitment and UPS SCPs (``[quotas]`` in serve's TOML).

A request over a size limit, or from a calling AE past its allowance, is refused with
0x0213 (resource limitation, which PS3.7 lists for every DIMSE-N service) and an
Error Comment naming the limit; nothing is stored. The allowance counts the bytes an
AE had stored (DICOM JSON of MPPS instances, each N-CREATE and N-SET counted anew;
the refs of commitment requests) per service in a time window, in the database, so
every worker sharing it sees one count.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..status import RESOURCE_LIMITATION
from ..store.interface import Allowance

__all__ = ["Quotas", "RESOURCE_LIMITATION"]  # (the status, for the services' refusals)


@dataclass(frozen=True, slots=True, kw_only=True)
class Quotas:
    """Size limits in bytes (0: no limit) and the allowance window in seconds."""

    mpps_max_request: int = 1 << 20  # one N-CREATE or N-SET data set, as received
    mpps_max_instance: int = 1 << 20  # one stored MPPS instance (its DICOM JSON)
    commitment_max_request: int = 16 << 20  # one N-ACTION's Action Information (~100k refs)
    ups_max_workitem: int = 1 << 20  # one UPS workitem (N-CREATE, N-SET): as received, stored
    ae_max_bytes: int = 64 << 20  # stored per calling AE, per service, per window
    ae_window: float = 3600.0

    def allowance(self, calling_aet: str, service: str) -> Allowance | None:
        """What ``calling_aet`` may still store for ``service``; None: no limit."""
        if self.ae_max_bytes <= 0:
            return None
        return Allowance(calling_aet=calling_aet, service=service,
                         max_bytes=self.ae_max_bytes, window=self.ae_window)


def over(limit: int, size: int) -> bool:
    """Whether ``size`` passes ``limit`` (0: no limit)."""
    return 0 < limit < size

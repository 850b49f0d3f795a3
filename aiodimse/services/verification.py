"""Verification SCP (PS3.4 Annex A) as a service: C-ECHO on its own context.

No handler: the library answers C-ECHO 0x0000 when none is bound (every node
answers Verification), so the service only declares the SOP class.
"""

from __future__ import annotations

from ..handlers import Binding
from ..presentation import VERIFICATION
from .base import Service, SOPClass

__all__ = ["VerificationSCP"]


class VerificationSCP(Service):
    """Accept the Verification SOP class; C-ECHO is answered Success."""

    name = "verification"
    sop_classes = (SOPClass(VERIFICATION),)

    def handlers(self) -> list[Binding]:
        return []

"""``aiodimse echo``: verification SCU, as DCMTK's echoscu."""

from __future__ import annotations

import sys

from ..ae import AE
from ..association import AssociationError
from ..presentation import VERIFICATION
from ..status import Category, code_to_category

__all__ = ["run_echo"]


async def run_echo(
    host: str,
    port: int,
    *,
    calling: str,
    called: str,
    repeat: int,
    timeout: float,
    max_pdu: int,
) -> int:
    """Exit status 0 when every C-ECHO succeeded, 1 on a failure status, 2 otherwise."""
    ae = AE(calling)
    ae.acse_timeout = ae.dimse_timeout = ae.connection_timeout = timeout
    ae.add_requested_context(VERIFICATION)
    worst = 0
    try:
        async with ae.associate(host, port, ae_title=called, max_pdu=max_pdu) as assoc:
            for _ in range(max(repeat, 1)):
                status = await assoc.send_c_echo()
                code = int(status.Status)
                ok = code_to_category(code) is Category.SUCCESS
                print(f"C-ECHO status 0x{code:04X}" + ("" if ok else " (failure)"))
                worst = max(worst, 0 if ok else 1)
    except AssociationError as exc:
        print(f"aiodimse echo: {exc}", file=sys.stderr)
        return 2
    return worst

"""A DIMSE-C request on an accepted context that no service serves is answered
0x0211 (Unrecognized operation), the association kept. (C-STORE is served:
tests/cstore.)"""

from __future__ import annotations

from typing import Any

import pytest

from aiodimse.dimse.messages import CFindRQ, DIMSEMessage
from aiodimse.scu import _Command

from ._helpers import VERIFICATION, bounded, ds_of, make_scp_ae, make_scu_ae, session

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def _find(i: int) -> DIMSEMessage:
    return CFindRQ(MessageID=i, AffectedSOPClassUID=STUDY_ROOT_FIND, Priority=0)


@pytest.mark.asyncio
@pytest.mark.parametrize(("sop_class", "build"), [(STUDY_ROOT_FIND, _find)])
async def test_a_request_no_service_serves_is_answered_0211(sop_class: str, build: Any) -> None:
    classes = (VERIFICATION, sop_class)
    async with session(scu=make_scu_ae(classes=classes), scp=make_scp_ae(classes=classes)
                       ) as assoc:
        context = assoc._context_for(sop_class, None)
        received = await bounded(assoc._request(context, _Command(build),
                                               ds_of(SOPInstanceUID="1.2.3.4")))
        assert received.message.Status == 0x0211  # type: ignore[attr-defined]
        assert received.message.MessageIDBeingRespondedTo == 1  # type: ignore[attr-defined]
        echo = await bounded(assoc.send_c_echo())
        assert echo.Status == 0x0000

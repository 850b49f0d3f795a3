"""Requests on a Meta SOP Class context (PS3.4 H: Print Management).

The command carries the component SOP Class (Film Session, Film Box) while the
presentation context is the Basic Grayscale Print Management Meta SOP Class; the
SCP routes by presentation context, never by comparing the two.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from aiodimse import AE, evt

from ._helpers import bounded, serving

GRAYSCALE_META = "1.2.840.10008.5.1.1.9"
FILM_SESSION = "1.2.840.10008.5.1.1.1"
FILM_BOX = "1.2.840.10008.5.1.1.2"


async def test_print_session_on_the_meta_context() -> None:
    seen: list[tuple[str, str, str]] = []

    def record(event: Any) -> None:
        rq = event.request
        uid = getattr(rq, "AffectedSOPClassUID", None) or rq.RequestedSOPClassUID
        seen.append((event.name, uid, event.context.abstract_syntax))

    async def on_create(event: Any) -> tuple[int, Dataset]:
        record(event)
        reply = Dataset()
        reply.AffectedSOPInstanceUID = "1.2.3.4.5"  # the SCP assigns the instance UID
        reply.NumberOfCopies = event.attribute_list.NumberOfCopies
        return 0x0000, reply

    async def on_set(event: Any) -> tuple[int, None]:
        record(event)
        return 0x0000, None

    async def on_action(event: Any) -> tuple[int, None]:
        record(event)
        return 0x0000, None

    async def on_delete(event: Any) -> int:
        record(event)
        return 0x0000

    scp = AE("PRINT_SCP")
    scp.add_supported_context(GRAYSCALE_META)
    handlers = [
        (evt.EVT_N_CREATE, on_create),
        (evt.EVT_N_SET, on_set),
        (evt.EVT_N_ACTION, on_action),
        (evt.EVT_N_DELETE, on_delete),
    ]
    async with serving(handlers, ae=scp) as server:
        scu = AE("PRINT_SCU")
        scu.add_requested_context(GRAYSCALE_META)
        async with scu.associate("127.0.0.1", server.port, ae_title="PRINT_SCP") as assoc:
            session = Dataset()
            session.NumberOfCopies = 2
            status, reply = await bounded(
                assoc.send_n_create(session, FILM_SESSION, meta_uid=GRAYSCALE_META)
            )
            assert status.Status == 0x0000
            assert status.AffectedSOPInstanceUID == "1.2.3.4.5"
            assert reply is not None and reply.NumberOfCopies == 2
            change = Dataset()
            change.NumberOfCopies = 3
            status, _ = await bounded(
                assoc.send_n_set(change, FILM_SESSION, "1.2.3.4.5", meta_uid=GRAYSCALE_META)
            )
            assert status.Status == 0x0000
            status, _ = await bounded(
                assoc.send_n_action(None, 1, FILM_BOX, "1.2.3.4.6", meta_uid=GRAYSCALE_META)
            )
            assert status.Status == 0x0000
            status = await bounded(
                assoc.send_n_delete(FILM_SESSION, "1.2.3.4.5", meta_uid=GRAYSCALE_META)
            )
            assert status.Status == 0x0000
            # Without meta_uid there is no context for the component class.
            with pytest.raises(ValueError, match="no accepted presentation context"):
                await assoc.send_n_delete(FILM_SESSION, "1.2.3.4.5")
    assert seen == [
        ("EVT_N_CREATE", FILM_SESSION, GRAYSCALE_META),
        ("EVT_N_SET", FILM_SESSION, GRAYSCALE_META),
        ("EVT_N_ACTION", FILM_BOX, GRAYSCALE_META),
        ("EVT_N_DELETE", FILM_SESSION, GRAYSCALE_META),
    ]

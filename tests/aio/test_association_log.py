"""What an integrator reads: one INFO line when an association starts (or is
rejected, in words) and one when it ends; the A-ASSOCIATE-RQ/AC in full at DEBUG."""

from __future__ import annotations

import logging

import pytest

from aiodimse import AE, AssociationRejectedError

from ._helpers import MPPS, VERIFICATION, bounded, make_scp_ae, serving

LOGGER = "aiodimse.association"


async def test_accept_and_end_lines_say_who_what_and_how_busy(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    scp = make_scp_ae("ARCHIVE", classes=[VERIFICATION])
    async with serving(ae=scp) as server:
        scu = AE("MODALITY")
        scu.add_requested_context(VERIFICATION)
        scu.add_requested_context(MPPS)  # refused by this SCP
        async with scu.associate("127.0.0.1", server.port, ae_title="ARCHIVE") as assoc:
            for _ in range(3):
                await bounded(assoc.send_c_echo())
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    accepted = [line for line in lines if line.startswith("association from MODALITY@127.0.0.1:")]
    assert len(accepted) == 2, lines  # accepted, then ended
    assert accepted[0].endswith(
        "to ARCHIVE accepted: Verification SOP Class (Implicit VR Little Endian); "
        "1 context(s) refused; max PDU 16382/16382")
    assert " ended: released after " in accepted[1]
    assert accepted[1].endswith(", 3 request(s) received")
    ours = [line for line in lines if line.startswith("association to ARCHIVE@127.0.0.1:")]
    assert len(ours) == 2 and ours[1].endswith(", 0 request(s) received")


async def test_a_rejection_is_logged_in_words_on_both_sides(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    scp = make_scp_ae("ARCHIVE", classes=[VERIFICATION])
    scp.require_calling_aet = ["GOOD"]
    async with serving(ae=scp) as server:
        scu = AE("STRANGER")
        scu.add_requested_context(VERIFICATION)
        with pytest.raises(AssociationRejectedError):
            await bounded(scu.associate("127.0.0.1", server.port, ae_title="ARCHIVE"))
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    words = ("rejected permanent / service user / calling AE title not recognized "
             "(result 1, source 1, reason 3)")
    assert any(line.startswith("rejected association from STRANGER@127.0.0.1:")
               and line.endswith(f"to ARCHIVE: {words}") for line in lines), lines
    assert any(line.endswith(f": A-ASSOCIATE-RJ: {words}") for line in lines), lines
    assert not any(" ended: " in line for line in lines)  # never established


async def test_debug_shows_the_request_and_the_answer(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    async with serving(ae=make_scp_ae("ARCHIVE", classes=[VERIFICATION])) as server:
        scu = AE("MODALITY")
        scu.add_requested_context(VERIFICATION)
        async with scu.associate("127.0.0.1", server.port, ae_title="ARCHIVE"):
            pass
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == LOGGER)
    assert "received from MODALITY@127.0.0.1:\n  A-ASSOCIATE-RQ\n    Calling AE title: MODALITY" \
        in text
    assert "\\x0a" not in text
    assert "A-ASSOCIATE-AC" in text
    assert "1: 1.2.840.10008.1.1 (Verification SOP Class): accepted" in text


async def test_nothing_is_formatted_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    async with serving(ae=make_scp_ae("ARCHIVE", classes=[VERIFICATION])) as server:
        scu = AE("MODALITY")
        scu.add_requested_context(VERIFICATION)
        async with scu.associate("127.0.0.1", server.port, ae_title="ARCHIVE") as assoc:
            await bounded(assoc.send_c_echo())
    assert [r for r in caplog.records if r.name == LOGGER] == []

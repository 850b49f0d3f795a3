"""The server remembers negotiations per proposal, bounded, and forgets them on change."""

from __future__ import annotations

from aiodimse import AE

from ._helpers import STGCMT, VERIFICATION, bounded, serving


async def test_small_proposals_are_remembered_and_forgotten_when_contexts_change() -> None:
    scp = AE("TEST_SCP")
    scp.add_supported_context(VERIFICATION)
    async with serving(ae=scp) as server:
        scu = AE("TEST_SCU")
        scu.add_requested_context(VERIFICATION)
        scu.add_requested_context(STGCMT)
        for _ in range(2):
            async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
                assert [c.abstract_syntax for c in assoc.accepted_contexts] == [VERIFICATION]
        assert len(server.negotiations) == 1
        assert server.negotiations.by_identity == 1  # the same decoded request, by identity
        server.contexts[STGCMT] = scp.supported_contexts[0].__class__(
            abstract_syntax=STGCMT, transfer_syntaxes=("1.2.840.10008.1.2",)
        )
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            accepted = sorted(c.abstract_syntax for c in assoc.accepted_contexts)
            assert accepted == sorted([VERIFICATION, STGCMT])  # not the stale answer


async def test_a_large_proposal_is_negotiated_but_not_remembered() -> None:
    scp = AE("TEST_SCP")
    scp.add_supported_context(VERIFICATION)
    async with serving(ae=scp) as server:
        scu = AE("TEST_SCU")
        scu.add_requested_context(VERIFICATION)
        for i in range(127):  # 128 contexts of 4 transfer syntaxes: over the cache's bound
            scu.add_requested_context(f"1.2.840.10008.5.1.4.1.1.{i + 1000}")
        assoc = await bounded(scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP"))
        assert [c.abstract_syntax for c in assoc.accepted_contexts] == [VERIFICATION]
        await bounded(assoc.release())
        assert len(server.negotiations) == 0
        assert server.negotiations.by_identity == 0


async def test_remembered_answers_echo_each_request_and_follow_the_settings() -> None:
    """A reused A-ASSOCIATE-AC is the one built afresh: AE titles and settings included."""
    scp = AE("TEST_SCP")
    scp.add_supported_context(VERIFICATION)
    scp.require_called_aet = False
    seen: list[tuple[str, str, int]] = []
    async with serving(ae=scp) as server:
        for calling, max_pdu in (("SCU_A", 16384), ("SCU_A", 16384), ("SCU_B", 16384),
                                 ("SCU_A", 32768), ("SCU_B", 32768)):
            scp.maximum_pdu_size = max_pdu
            scu = AE(calling)
            scu.add_requested_context(VERIFICATION)
            async with scu.associate("127.0.0.1", server.port, ae_title="ANY_TITLE") as assoc:
                assert (await bounded(assoc.send_c_echo())).Status == 0
                acceptor = assoc.acceptor
                seen.append((assoc.requestor.ae_title, acceptor.ae_title,
                             acceptor.maximum_length))
    assert seen == [
        ("SCU_A", "ANY_TITLE", 16384),
        ("SCU_A", "ANY_TITLE", 16384),
        ("SCU_B", "ANY_TITLE", 16384),
        ("SCU_A", "ANY_TITLE", 32768),
        ("SCU_B", "ANY_TITLE", 32768),
    ]
    (entry,) = server.negotiations.entries()
    assert len(entry.answers) == 4  # one remembered answer per distinct (titles, settings)


async def test_remembered_answers_carry_the_callers_own_ae_titles() -> None:
    import asyncio
    import dataclasses

    from aiodimse.wire import encode_pdu

    from ..ul.helpers import make_rq

    scp = AE("TEST_SCP")
    scp.add_supported_context(VERIFICATION)
    scp.require_called_aet = False
    async with serving(ae=scp) as server:
        answers = []
        for calling in ("FIRST", "SECOND", "FIRST", "SECOND"):
            rq = dataclasses.replace(make_rq(), calling_ae_title=calling)
            reader, writer = await bounded(asyncio.open_connection("127.0.0.1", server.port))
            try:
                writer.write(encode_pdu(rq))
                header = await bounded(reader.readexactly(6))
                body = await bounded(reader.readexactly(int.from_bytes(header[2:], "big")))
            finally:
                writer.close()
            assert header[0] == 0x02
            answers.append(header + body)
        # called AE title at PDU offset 10, calling at 26 (PS3.8 9.3.3), 16 bytes each
        assert [a[26:42].rstrip(b" ") for a in answers] == [b"FIRST", b"SECOND"] * 2
        assert [a[10:26].rstrip(b" ") for a in answers] == [b"ACCEPTOR"] * 4
        assert answers[0] == answers[2] and answers[1] == answers[3]

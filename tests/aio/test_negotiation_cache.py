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
        assert len(server._negotiations) == 1
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
        assert len(server._negotiations) == 0

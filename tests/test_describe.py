"""The association PDUs in words (``-d`` output and the per-association INFO line)."""

from __future__ import annotations

from aiodimse.describe import (
    accepted_summary,
    describe_associate_ac,
    describe_associate_rq,
    describe_rejection,
    printable,
    uid_name,
)
from aiodimse.wire.items import (
    AsyncOpsWindow,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    UserIdentityRQ,
    UserInformation,
)
from aiodimse.wire.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ

VERIFICATION = "1.2.840.10008.1.1"
STGCMT = "1.2.840.10008.1.20.1"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


def _rq(calling: str = "MODALITY") -> AAssociateRQ:
    return AAssociateRQ(
        called_ae_title="ARCHIVE", calling_ae_title=calling,
        presentation_contexts=(
            PresentationContextRQ(context_id=1, abstract_syntax=VERIFICATION,
                                  transfer_syntaxes=(IMPLICIT,)),
            PresentationContextRQ(context_id=3, abstract_syntax=STGCMT,
                                  transfer_syntaxes=(EXPLICIT, IMPLICIT)),
        ),
        user_information=UserInformation(
            maximum_length=16384, implementation_class_uid="1.2.3.4",
            implementation_version_name="TEST_1",
            async_ops_window=AsyncOpsWindow(max_invoked=4, max_performed=1),
            role_selection=(RoleSelection(sop_class_uid=STGCMT, scu_role=True,
                                          scp_role=True),),
            user_identity_rq=UserIdentityRQ(identity_type=2, positive_response_requested=True,
                                            primary_field=b"alice", secondary_field=b"secret"),
        ),
    )


def test_the_request_names_every_context_role_and_item() -> None:
    text = describe_associate_rq(_rq())
    assert "Calling AE title: MODALITY" in text and "Called AE title:  ARCHIVE" in text
    assert "1: 1.2.840.10008.1.1 (Verification SOP Class)" in text
    assert "3: 1.2.840.10008.1.20.1 (Storage Commitment Push Model SOP Class), role SCU and SCP" \
        in text
    assert "1.2.840.10008.1.2.1 (Explicit VR Little Endian)" in text
    assert "Max PDU length: 16384" in text
    assert "Async operations window: invoked 4, performed 1" in text
    assert "User identity: username and passcode, response requested" in text
    assert "secret" not in text and "alice" not in text  # never a credential in a log


def test_the_answer_names_results_with_the_proposed_syntaxes() -> None:
    ac = AAssociateAC(
        called_ae_title="ARCHIVE", calling_ae_title="MODALITY",
        presentation_contexts=(
            PresentationContextAC(context_id=1, result=0, transfer_syntax=IMPLICIT),
            PresentationContextAC(context_id=3, result=3),
        ),
        user_information=UserInformation(maximum_length=0, implementation_class_uid="1.2.5"),
    )
    text = describe_associate_ac(ac, _rq())
    assert "1: 1.2.840.10008.1.1 (Verification SOP Class): accepted, 1.2.840.10008.1.2 " \
        "(Implicit VR Little Endian)" in text
    assert "3: 1.2.840.10008.1.20.1 (Storage Commitment Push Model SOP Class): abstract " \
        "syntax not supported" in text
    assert "Max PDU length: no limit" in text


def test_peer_text_is_escaped_and_cut() -> None:
    text = describe_associate_rq(_rq(calling="EVIL\r\nCRITICAL"))
    assert "\r" not in text and "\n CRITICAL" not in text
    assert "EVIL\\x0d\\x0aCRITICA" in text
    assert printable("A" * 100, 10) == "A" * 10 + "..."
    assert printable("\u2028x") == "\\u2028x"
    assert printable("Ü") == "Ü"  # printable, if not ASCII: kept
    assert uid_name("1.2.3\n") == "1.2.3\\x0a"


def test_rejection_and_summary_words() -> None:
    assert describe_rejection(AAssociateRJ(result=2, source=3, reason=2)) == (
        "A-ASSOCIATE-RJ: rejected transient / service provider (presentation) / local limit "
        "exceeded (result 2, source 3, reason 2)")
    assert accepted_summary([(VERIFICATION, IMPLICIT)]) == (
        "Verification SOP Class (Implicit VR Little Endian)")

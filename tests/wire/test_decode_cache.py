"""The A-ASSOCIATE-RQ decode cache is bounded and never holds credentials."""

from __future__ import annotations

from aiodimse.wire import codec
from aiodimse.wire.codec import decode_pdu, encode_pdu
from aiodimse.wire.items import PresentationContextRQ, UserIdentityRQ, UserInformation
from aiodimse.wire.pdus import AAssociateRQ

IMPLICIT = "1.2.840.10008.1.2"


def _rq(n_contexts: int, identity: UserIdentityRQ | None = None) -> bytes:
    syntaxes = (IMPLICIT, "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99")
    contexts = tuple(
        PresentationContextRQ(
            context_id=2 * i + 1,
            abstract_syntax=f"1.2.840.10008.5.1.4.1.1.{i + 1}",
            transfer_syntaxes=syntaxes,
        )
        for i in range(n_contexts)
    )
    info = UserInformation(
        maximum_length=16384, implementation_class_uid="1.2.3.4", user_identity_rq=identity
    )
    return encode_pdu(
        AAssociateRQ(
            called_ae_title="SCP",
            calling_ae_title="SCU",
            presentation_contexts=contexts,
            user_information=info,
        )
    )


def test_a_repeated_small_request_is_decoded_once() -> None:
    data = _rq(2)
    first = decode_pdu(data)
    assert decode_pdu(data) is first
    assert bytes(data) in codec._RQ_DECODED


def test_a_request_with_credentials_is_never_cached() -> None:
    secret = UserIdentityRQ(
        identity_type=2,
        positive_response_requested=False,
        primary_field=b"alice",
        secondary_field=b"s3cret",
    )
    data = _rq(2, secret)
    first = decode_pdu(data)
    assert first.user_information.user_identity_rq == secret  # type: ignore[union-attr]
    assert bytes(data) not in codec._RQ_DECODED
    assert decode_pdu(data) is not first


def test_a_large_request_is_not_cached() -> None:
    data = _rq(128)  # the most contexts a request may hold, with long syntaxes
    assert len(data) > codec._RQ_CACHED_MAX_BYTES
    decode_pdu(data)
    assert bytes(data) not in codec._RQ_DECODED
    assert all(len(k) <= codec._RQ_CACHED_MAX_BYTES for k in codec._RQ_DECODED)

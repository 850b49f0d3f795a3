"""The decode caches: A-ASSOCIATE-RQs (bounded, never with credentials), release PDUs."""

from __future__ import annotations

import pytest

from aiodimse.errors import RemoteProtocolError
from aiodimse.wire import codec
from aiodimse.wire.codec import A_RELEASE_RP_BYTES, A_RELEASE_RQ_BYTES, decode_pdu, encode_pdu
from aiodimse.wire.items import PresentationContextRQ, UserIdentityRQ, UserInformation
from aiodimse.wire.pdus import AAssociateRQ, AReleaseRP, AReleaseRQ

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


def test_a_cached_request_is_found_from_bytes_a_memoryview_and_a_bytearray(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _rq(3)
    first = decode_pdu(memoryview(data))  # the reader's slice of a larger chunk

    def parsed(*args: object) -> None:
        raise AssertionError("a request seen before was parsed again")

    monkeypatch.setattr(codec, "_decode_associate", parsed)
    assert decode_pdu(data) is first  # the reader's whole chunk
    assert decode_pdu(bytearray(data)) is first
    assert decode_pdu(memoryview(data)) is first


def test_the_same_bytes_with_a_trailing_byte_are_still_judged() -> None:
    data = _rq(2)
    decode_pdu(data)
    try:
        decode_pdu(data + b"\x00")
    except RemoteProtocolError as exc:
        assert "PDU-length" in str(exc)
    else:
        raise AssertionError("a PDU with a byte beyond its length was accepted")


def test_release_pdus_decode_to_their_single_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reserved bytes are not tested (PS3.8 9.3.6): a non-zero one is the same PDU,
    # found by parsing; the usual bytes are found without.
    assert decode_pdu(A_RELEASE_RQ_BYTES[:-1] + b"\x01") == AReleaseRQ()
    assert decode_pdu(bytearray(A_RELEASE_RP_BYTES)) == AReleaseRP()

    def parsed(*args: object) -> None:
        raise AssertionError("the release PDU was parsed")

    monkeypatch.setattr(codec, "_decode_fixed4", parsed)
    assert decode_pdu(A_RELEASE_RQ_BYTES) == AReleaseRQ()
    assert decode_pdu(A_RELEASE_RP_BYTES) == AReleaseRP()

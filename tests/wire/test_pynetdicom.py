"""Golden bytes from an independent implementation (pynetdicom 3), in both directions.

pynetdicom builds PDUs from its primitives and we decode them; we encode and pynetdicom
decodes. Each side is compared with the same aiodimse dataclass value through small
converters written here, so neither codec checks itself.
"""

from __future__ import annotations

from typing import Any

import pynetdicom.pdu as pdu_mod
import pynetdicom.pdu_primitives as pp
from hypothesis import given, settings
from hypothesis import strategies as st
from pynetdicom import presentation

from aiodimse.wire import (
    PDU,
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    AsyncOpsWindow,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
    decode_pdu,
    encode_pdu,
)
from tests.examples import examples
from tests.wire import strategies as s

CT = "1.2.840.10008.5.1.4.1.1.2"
SR = "1.2.840.10008.5.1.4.1.1.88.22"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"

FULL_RQ = AAssociateRQ(
    called_ae_title="ANY-SCP",
    calling_ae_title="STORESCU",
    presentation_contexts=(
        PresentationContextRQ(context_id=1, abstract_syntax=CT, transfer_syntaxes=(EXPLICIT,)),
        PresentationContextRQ(
            context_id=3, abstract_syntax=SR, transfer_syntaxes=(EXPLICIT, IMPLICIT)
        ),
    ),
    user_information=UserInformation(
        maximum_length=16384,
        implementation_class_uid="1.2.826.0.1.3680043.9.3811.3.0.4",
        implementation_version_name="PYNETDICOM_304",
        async_ops_window=AsyncOpsWindow(max_invoked=5, max_performed=3),
        role_selection=(
            RoleSelection(sop_class_uid=CT, scu_role=True, scp_role=True),
            RoleSelection(sop_class_uid=SR, scu_role=False, scp_role=True),
        ),
        extended_negotiation=(
            SOPClassExtendedNegotiation(
                sop_class_uid="1.2.840.10008.5.1.4.1.2.1.1", application_information=b"\x01\x01\x00"
            ),
        ),
        common_extended_negotiation=(
            SOPClassCommonExtendedNegotiation(
                sop_class_uid=SR,
                service_class_uid="1.2.840.10008.4.2",
                related_general_sop_classes=(
                    "1.2.840.10008.5.1.4.1.1.88.11",
                    "1.2.840.10008.5.1.4.1.1.88.33",
                ),
            ),
        ),
        user_identity_rq=UserIdentityRQ(
            identity_type=2,
            positive_response_requested=True,
            primary_field=b"alice",
            secondary_field=b"s3cret",
        ),
    ),
)

FULL_AC = AAssociateAC(
    called_ae_title="ANY-SCP",
    calling_ae_title="STORESCU",
    presentation_contexts=(
        PresentationContextAC(context_id=1, result=0, transfer_syntax=EXPLICIT),
        PresentationContextAC(context_id=3, result=3, transfer_syntax=IMPLICIT),
    ),
    user_information=UserInformation(
        maximum_length=0,
        implementation_class_uid="1.2.3.4.5",
        implementation_version_name="AIODIMSE",
        async_ops_window=AsyncOpsWindow(max_invoked=1, max_performed=1),
        role_selection=(RoleSelection(sop_class_uid=CT, scu_role=False, scp_role=True),),
        extended_negotiation=(
            SOPClassExtendedNegotiation(sop_class_uid=CT, application_information=b"\x01"),
        ),
        user_identity_ac=UserIdentityAC(server_response=b"ticket-reply"),
    ),
)


# ---------------------------------------------------------------------------
# aiodimse value -> pynetdicom primitives -> pynetdicom bytes
# ---------------------------------------------------------------------------
def _pn_user_information(info: UserInformation) -> list[Any]:
    out: list[Any] = []
    if info.maximum_length is not None:
        item = pp.MaximumLengthNotification()
        item.maximum_length_received = info.maximum_length
        out.append(item)
    if info.implementation_class_uid:
        item = pp.ImplementationClassUIDNotification()
        item.implementation_class_uid = info.implementation_class_uid
        out.append(item)
    if info.implementation_version_name is not None:
        item = pp.ImplementationVersionNameNotification()
        item.implementation_version_name = info.implementation_version_name
        out.append(item)
    if info.async_ops_window is not None:
        item = pp.AsynchronousOperationsWindowNegotiation()
        item.maximum_number_operations_invoked = info.async_ops_window.max_invoked
        item.maximum_number_operations_performed = info.async_ops_window.max_performed
        out.append(item)
    for role in info.role_selection:
        item = pp.SCP_SCU_RoleSelectionNegotiation()
        item.sop_class_uid = role.sop_class_uid
        item.scu_role = role.scu_role
        item.scp_role = role.scp_role
        out.append(item)
    for ext in info.extended_negotiation:
        item = pp.SOPClassExtendedNegotiation()
        item.sop_class_uid = ext.sop_class_uid
        item.service_class_application_information = ext.application_information
        out.append(item)
    for com in info.common_extended_negotiation:
        item = pp.SOPClassCommonExtendedNegotiation()
        item.sop_class_uid = com.sop_class_uid
        item.service_class_uid = com.service_class_uid
        item.related_general_sop_class_identification = list(com.related_general_sop_classes)
        out.append(item)
    if info.user_identity_rq is not None:
        ident = info.user_identity_rq
        item = pp.UserIdentityNegotiation()
        item.user_identity_type = ident.identity_type
        item.positive_response_requested = ident.positive_response_requested
        item.primary_field = ident.primary_field
        item.secondary_field = ident.secondary_field
        out.append(item)
    if info.user_identity_ac is not None:
        item = pp.UserIdentityNegotiation()
        item.server_response = info.user_identity_ac.server_response
        out.append(item)
    return out


def _pn_encode_rq(rq: AAssociateRQ) -> bytes:
    prim = pp.A_ASSOCIATE()
    prim.application_context_name = rq.application_context_name
    prim.called_ae_title = rq.called_ae_title
    prim.calling_ae_title = rq.calling_ae_title
    for pc in rq.presentation_contexts:
        ctx = presentation.PresentationContext()
        ctx.context_id = pc.context_id
        ctx.abstract_syntax = pc.abstract_syntax
        ctx.transfer_syntax = list(pc.transfer_syntaxes)
        prim.presentation_context_definition_list.append(ctx)
    prim.user_information = _pn_user_information(rq.user_information)
    return bytes(pdu_mod.A_ASSOCIATE_RQ(prim).encode())


def _pn_encode_ac(ac: AAssociateAC) -> bytes:
    prim = pp.A_ASSOCIATE()
    prim.application_context_name = ac.application_context_name
    prim.called_ae_title = ac.called_ae_title
    prim.calling_ae_title = ac.calling_ae_title
    prim.result = 0
    for pc in ac.presentation_contexts:
        ctx = presentation.PresentationContext()
        ctx.context_id = pc.context_id
        ctx.result = pc.result
        ctx.transfer_syntax = [pc.transfer_syntax] if pc.transfer_syntax else []
        prim.presentation_context_definition_results_list.append(ctx)
    prim.user_information = _pn_user_information(ac.user_information)
    return bytes(pdu_mod.A_ASSOCIATE_AC(prim).encode())


# ---------------------------------------------------------------------------
# pynetdicom bytes -> pynetdicom primitives -> aiodimse value
# ---------------------------------------------------------------------------
def _from_pn_user_information(prims: list[Any]) -> UserInformation:
    fields: dict[str, Any] = {"maximum_length": None}
    roles, exts, coms = [], [], []
    for item in prims:
        if isinstance(item, pp.MaximumLengthNotification):
            fields["maximum_length"] = item.maximum_length_received
        elif isinstance(item, pp.ImplementationClassUIDNotification):
            fields["implementation_class_uid"] = str(item.implementation_class_uid)
        elif isinstance(item, pp.ImplementationVersionNameNotification):
            fields["implementation_version_name"] = str(item.implementation_version_name)
        elif isinstance(item, pp.AsynchronousOperationsWindowNegotiation):
            fields["async_ops_window"] = AsyncOpsWindow(
                max_invoked=item.maximum_number_operations_invoked,
                max_performed=item.maximum_number_operations_performed,
            )
        elif isinstance(item, pp.SCP_SCU_RoleSelectionNegotiation):
            roles.append(
                RoleSelection(
                    sop_class_uid=str(item.sop_class_uid),
                    scu_role=bool(item.scu_role),
                    scp_role=bool(item.scp_role),
                )
            )
        elif isinstance(item, pp.SOPClassExtendedNegotiation):
            exts.append(
                SOPClassExtendedNegotiation(
                    sop_class_uid=str(item.sop_class_uid),
                    application_information=bytes(item.service_class_application_information),
                )
            )
        elif isinstance(item, pp.SOPClassCommonExtendedNegotiation):
            coms.append(
                SOPClassCommonExtendedNegotiation(
                    sop_class_uid=str(item.sop_class_uid),
                    service_class_uid=str(item.service_class_uid),
                    related_general_sop_classes=tuple(
                        str(uid) for uid in item.related_general_sop_class_identification
                    ),
                )
            )
        elif isinstance(item, pp.UserIdentityNegotiation):
            if item.server_response is not None:
                fields["user_identity_ac"] = UserIdentityAC(server_response=item.server_response)
            else:
                fields["user_identity_rq"] = UserIdentityRQ(
                    identity_type=item.user_identity_type,
                    positive_response_requested=item.positive_response_requested,
                    primary_field=item.primary_field,
                    secondary_field=item.secondary_field or b"",
                )
        else:  # pragma: no cover - a converter gap, not a codec result
            raise AssertionError(f"unexpected pynetdicom primitive {item!r}")
    return UserInformation(
        role_selection=tuple(roles),
        extended_negotiation=tuple(exts),
        common_extended_negotiation=tuple(coms),
        **fields,
    )


def _pn_decode(data: bytes) -> PDU:
    pdu_type = data[0]
    if pdu_type == 0x01:
        rq = pdu_mod.A_ASSOCIATE_RQ()
        rq.decode(data)
        prim = rq.to_primitive()
        return AAssociateRQ(
            called_ae_title=prim.called_ae_title,
            calling_ae_title=prim.calling_ae_title,
            application_context_name=str(prim.application_context_name),
            protocol_version=rq.protocol_version,
            presentation_contexts=tuple(
                PresentationContextRQ(
                    context_id=ctx.context_id,
                    abstract_syntax=str(ctx.abstract_syntax),
                    transfer_syntaxes=tuple(str(ts) for ts in ctx.transfer_syntax),
                )
                for ctx in prim.presentation_context_definition_list
            ),
            user_information=_from_pn_user_information(prim.user_information),
        )
    if pdu_type == 0x02:
        ac = pdu_mod.A_ASSOCIATE_AC()
        ac.decode(data)
        prim = ac.to_primitive()
        return AAssociateAC(
            called_ae_title=ac.reserved_aet.strip(),
            calling_ae_title=ac.reserved_aec.strip(),
            application_context_name=str(prim.application_context_name),
            protocol_version=ac.protocol_version,
            presentation_contexts=tuple(
                PresentationContextAC(
                    context_id=ctx.context_id,
                    result=ctx.result,
                    transfer_syntax=str(ctx.transfer_syntax[0]) if ctx.transfer_syntax else "",
                )
                for ctx in prim.presentation_context_definition_results_list
            ),
            user_information=_from_pn_user_information(prim.user_information),
        )
    if pdu_type == 0x03:
        rj = pdu_mod.A_ASSOCIATE_RJ()
        rj.decode(data)
        return AAssociateRJ(result=rj.result, source=rj.source, reason=rj.reason_diagnostic)
    if pdu_type == 0x04:
        pd = pdu_mod.P_DATA_TF()
        pd.decode(data)
        return PDataTF(
            pdvs=tuple(
                PDV(
                    context_id=item.presentation_context_id,
                    control=item.presentation_data_value[0],
                    data=bytes(item.presentation_data_value[1:]),
                )
                for item in pd.presentation_data_value_items
            )
        )
    if pdu_type == 0x05:
        pdu_mod.A_RELEASE_RQ().decode(data)
        return AReleaseRQ()
    if pdu_type == 0x06:
        pdu_mod.A_RELEASE_RP().decode(data)
        return AReleaseRP()
    ab = pdu_mod.A_ABORT_RQ()
    ab.decode(data)
    return AAbort(source=ab.source, reason=ab.reason_diagnostic)


# ---------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------
def test_pynetdicom_rq_decodes_with_all_items() -> None:
    encoded = _pn_encode_rq(FULL_RQ)
    assert decode_pdu(encoded) == FULL_RQ


def test_our_rq_decodes_with_pynetdicom() -> None:
    assert _pn_decode(encode_pdu(FULL_RQ)) == FULL_RQ


def test_pynetdicom_ac_decodes_with_all_items() -> None:
    encoded = _pn_encode_ac(FULL_AC)
    assert decode_pdu(encoded) == FULL_AC


def test_our_ac_decodes_with_pynetdicom() -> None:
    assert _pn_decode(encode_pdu(FULL_AC)) == FULL_AC


def test_pynetdicom_user_identity_types() -> None:
    for identity_type, secondary in ((1, b""), (2, b"pw"), (3, b""), (4, b""), (5, b"")):
        ident = UserIdentityRQ(
            identity_type=identity_type,
            positive_response_requested=identity_type % 2 == 0,
            primary_field=b"primary-%d" % identity_type,
            secondary_field=secondary,
        )
        rq = AAssociateRQ(
            called_ae_title="A",
            calling_ae_title="B",
            presentation_contexts=FULL_RQ.presentation_contexts[:1],
            user_information=UserInformation(
                maximum_length=0, implementation_class_uid="1.2.3", user_identity_rq=ident
            ),
        )
        assert decode_pdu(_pn_encode_rq(rq)) == rq
        assert _pn_decode(encode_pdu(rq)) == rq


def test_reject_both_ways() -> None:
    prim = pp.A_ASSOCIATE()
    prim.result = 0x01
    prim.result_source = 0x01
    prim.diagnostic = 0x07
    theirs = bytes(pdu_mod.A_ASSOCIATE_RJ(prim).encode())
    ours = AAssociateRJ(result=1, source=1, reason=7)
    assert decode_pdu(theirs) == ours
    assert encode_pdu(ours) == theirs
    assert _pn_decode(encode_pdu(ours)) == ours


def test_p_data_tf_both_ways() -> None:
    prim = pp.P_DATA()
    prim.presentation_data_value_list = [[1, b"\x03" + b"cmd!"], [1, b"\x02" + b"data" * 10]]
    theirs = bytes(pdu_mod.P_DATA_TF(prim).encode())
    ours = PDataTF(
        pdvs=(
            PDV(context_id=1, control=3, data=b"cmd!"),
            PDV(context_id=1, control=2, data=b"data" * 10),
        )
    )
    assert decode_pdu(theirs) == ours
    assert encode_pdu(ours) == theirs
    assert _pn_decode(encode_pdu(ours)) == ours


def test_release_and_abort_both_ways() -> None:
    assert encode_pdu(AReleaseRQ()) == bytes(pdu_mod.A_RELEASE_RQ().encode())
    assert encode_pdu(AReleaseRP()) == bytes(pdu_mod.A_RELEASE_RP().encode())
    assert decode_pdu(bytes(pdu_mod.A_RELEASE_RQ().encode())) == AReleaseRQ()
    assert decode_pdu(bytes(pdu_mod.A_RELEASE_RP().encode())) == AReleaseRP()

    user_abort = pp.A_ABORT()
    user_abort.abort_source = 0
    provider_abort = pp.A_P_ABORT()
    provider_abort.provider_reason = 6
    for prim, ours in (
        (user_abort, AAbort(source=0, reason=0)),
        (provider_abort, AAbort(source=2, reason=6)),
    ):
        theirs = bytes(pdu_mod.A_ABORT_RQ(prim).encode())
        assert decode_pdu(theirs) == ours
        assert encode_pdu(ours) == theirs
        assert _pn_decode(encode_pdu(ours)) == ours


# Random values pynetdicom can represent: no unknown items (it rejects them), a named
# implementation class, identity types it knows, alphanumeric AE titles.
_AE = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=16)


@st.composite
def _pn_user_informations(draw: st.DrawFn, *, ac: bool) -> UserInformation:
    info = draw(s.user_informations())
    identity_rq = info.user_identity_rq
    if ac or (identity_rq is not None and not 1 <= identity_rq.identity_type <= 5):
        identity_rq = None
    if (
        identity_rq is not None
        and identity_rq.identity_type == 2
        and not identity_rq.secondary_field
    ):
        identity_rq = None
    if identity_rq is not None and not identity_rq.primary_field:
        identity_rq = None
    # pynetdicom refuses a role item proposing neither role.
    roles = tuple(r for r in info.role_selection if r.scu_role or r.scp_role)
    return UserInformation(
        maximum_length=draw(st.integers(0, 0xFFFFFFFF)),
        implementation_class_uid=draw(s.uids()),
        implementation_version_name=draw(st.none() | _AE),
        async_ops_window=info.async_ops_window,
        role_selection=roles,
        extended_negotiation=info.extended_negotiation,
        common_extended_negotiation=() if ac else info.common_extended_negotiation,
        user_identity_rq=identity_rq,
        user_identity_ac=info.user_identity_ac if ac else None,
    )


def _pn_contexts_rq() -> st.SearchStrategy[PresentationContextRQ]:
    # pynetdicom drops repeated transfer syntaxes within a context.
    return st.builds(
        PresentationContextRQ,
        context_id=s.context_ids(),
        abstract_syntax=s.uids(),
        transfer_syntaxes=st.lists(s.uids(), min_size=1, max_size=4, unique=True).map(tuple),
    )


@settings(max_examples=examples(60), deadline=None)
@given(
    called=_AE,
    calling=_AE,
    contexts=st.lists(_pn_contexts_rq(), min_size=1, max_size=3),
    info=_pn_user_informations(ac=False),
)
def test_random_rq_both_ways(
    called: str, calling: str, contexts: list[PresentationContextRQ], info: UserInformation
) -> None:
    rq = AAssociateRQ(
        called_ae_title=called,
        calling_ae_title=calling,
        presentation_contexts=tuple(contexts),
        user_information=info,
    )
    assert _pn_decode(encode_pdu(rq)) == rq
    assert decode_pdu(_pn_encode_rq(rq)) == rq


@settings(max_examples=examples(60), deadline=None)
@given(
    contexts=st.lists(
        st.builds(
            PresentationContextAC,
            context_id=s.context_ids(),
            result=st.integers(0, 4),
            transfer_syntax=s.uids(),
        ),
        min_size=1,
        max_size=3,
    ),
    info=_pn_user_informations(ac=True),
)
def test_random_ac_both_ways(contexts: list[PresentationContextAC], info: UserInformation) -> None:
    ac = AAssociateAC(
        called_ae_title="CALLED",
        calling_ae_title="CALLING",
        presentation_contexts=tuple(contexts),
        user_information=info,
    )
    assert _pn_decode(encode_pdu(ac)) == ac
    assert decode_pdu(_pn_encode_ac(ac)) == ac


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(s.pdvs(max_size=200), min_size=1, max_size=4))
def test_random_p_data_both_ways(pdvs: list[PDV]) -> None:
    ours = PDataTF(pdvs=tuple(pdvs))
    assert _pn_decode(encode_pdu(ours)) == ours
    prim = pp.P_DATA()
    prim.presentation_data_value_list = [
        [pdv.context_id, bytes([pdv.control]) + bytes(pdv.data)] for pdv in pdvs
    ]
    assert decode_pdu(bytes(pdu_mod.P_DATA_TF(prim).encode())) == ours

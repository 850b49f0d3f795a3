"""Hypothesis strategies for every PS3.8 item and PDU, shared by all layers' tests.

Values are chosen so that encode -> decode gives them back unchanged: AE titles and
UIDs carry no padding, and unknown items never use a type the decoder knows at that
place.
"""

from __future__ import annotations

from hypothesis import strategies as st

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
    UnknownItem,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)

__all__ = [
    "uids",
    "ae_titles",
    "context_ids",
    "presentation_contexts_rq",
    "presentation_contexts_ac",
    "async_ops_windows",
    "role_selections",
    "extended_negotiations",
    "common_extended_negotiations",
    "user_identities_rq",
    "user_identities_ac",
    "unknown_items",
    "user_informations",
    "a_associate_rqs",
    "a_associate_acs",
    "a_associate_rjs",
    "pdvs",
    "p_data_tfs",
    "a_release_rqs",
    "a_release_rps",
    "a_aborts",
    "pdus",
]

_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_BYTE = st.integers(0, 0xFF)
_U16 = st.integers(0, 0xFFFF)


def uids() -> st.SearchStrategy[str]:
    """Syntactically valid UIDs (PS3.5 9.1): dot-separated numbers, no leading zeros."""
    component = st.one_of(st.just("0"), st.integers(1, 10**12).map(str))
    return (
        st.lists(component, min_size=2, max_size=10)
        .map(".".join)
        .filter(lambda uid: len(uid) <= 64)
    )


def ae_titles() -> st.SearchStrategy[str]:
    """Up to 16 printable ASCII characters without leading or trailing spaces."""
    return st.text(_PRINTABLE, max_size=16).map(str.strip)


def context_ids() -> st.SearchStrategy[int]:
    """Odd presentation context IDs 1-255."""
    return st.integers(0, 127).map(lambda n: 2 * n + 1)


def presentation_contexts_rq() -> st.SearchStrategy[PresentationContextRQ]:
    return st.builds(
        PresentationContextRQ,
        context_id=context_ids(),
        abstract_syntax=uids(),
        transfer_syntaxes=st.lists(uids(), min_size=1, max_size=4).map(tuple),
    )


def presentation_contexts_ac() -> st.SearchStrategy[PresentationContextAC]:
    return st.builds(
        PresentationContextAC,
        context_id=context_ids(),
        result=st.one_of(st.integers(0, 4), _BYTE),
        transfer_syntax=st.one_of(uids(), st.just("")),
    )


def async_ops_windows() -> st.SearchStrategy[AsyncOpsWindow]:
    return st.builds(AsyncOpsWindow, max_invoked=_U16, max_performed=_U16)


def role_selections() -> st.SearchStrategy[RoleSelection]:
    return st.builds(
        RoleSelection, sop_class_uid=uids(), scu_role=st.booleans(), scp_role=st.booleans()
    )


def extended_negotiations() -> st.SearchStrategy[SOPClassExtendedNegotiation]:
    return st.builds(
        SOPClassExtendedNegotiation,
        sop_class_uid=uids(),
        application_information=st.binary(max_size=32),
    )


def common_extended_negotiations() -> st.SearchStrategy[SOPClassCommonExtendedNegotiation]:
    return st.builds(
        SOPClassCommonExtendedNegotiation,
        sop_class_uid=uids(),
        service_class_uid=uids(),
        related_general_sop_classes=st.lists(uids(), max_size=3).map(tuple),
    )


@st.composite
def user_identities_rq(draw: st.DrawFn) -> UserIdentityRQ:
    identity_type = draw(st.one_of(st.integers(1, 5), _BYTE))
    secondary = draw(st.binary(max_size=32)) if identity_type == 2 else b""
    return UserIdentityRQ(
        identity_type=identity_type,
        positive_response_requested=draw(st.booleans()),
        primary_field=draw(st.binary(max_size=64)),
        secondary_field=secondary,
    )


def user_identities_ac() -> st.SearchStrategy[UserIdentityAC]:
    return st.builds(UserIdentityAC, server_response=st.binary(max_size=64))


def unknown_items(*, excluding: frozenset[int] = frozenset()) -> st.SearchStrategy[UnknownItem]:
    """Raw items whose type is not in ``excluding`` (the types known at that place)."""
    return st.builds(
        UnknownItem,
        item_type=_BYTE.filter(lambda t: t not in excluding),
        data=st.binary(max_size=32),
    )


_USER_SUB_ITEM_TYPES = frozenset(range(0x51, 0x5A))


def user_informations() -> st.SearchStrategy[UserInformation]:
    return st.builds(
        UserInformation,
        maximum_length=st.one_of(st.none(), st.integers(0, 0xFFFFFFFF)),
        implementation_class_uid=st.one_of(uids(), st.just("")),
        implementation_version_name=st.one_of(
            st.none(), st.text(_PRINTABLE, min_size=1, max_size=16).map(str.rstrip)
        ),
        async_ops_window=st.one_of(st.none(), async_ops_windows()),
        role_selection=st.lists(role_selections(), max_size=3).map(tuple),
        extended_negotiation=st.lists(extended_negotiations(), max_size=2).map(tuple),
        common_extended_negotiation=st.lists(common_extended_negotiations(), max_size=2).map(tuple),
        user_identity_rq=st.one_of(st.none(), user_identities_rq()),
        user_identity_ac=st.one_of(st.none(), user_identities_ac()),
        unknown=st.lists(unknown_items(excluding=_USER_SUB_ITEM_TYPES), max_size=2).map(tuple),
    )


_TOP_LEVEL_KNOWN = frozenset((0x10, 0x20, 0x21, 0x50))


def a_associate_rqs() -> st.SearchStrategy[AAssociateRQ]:
    return st.builds(
        AAssociateRQ,
        called_ae_title=ae_titles(),
        calling_ae_title=ae_titles(),
        presentation_contexts=st.lists(presentation_contexts_rq(), min_size=1, max_size=4).map(
            tuple
        ),
        user_information=user_informations(),
        application_context_name=st.one_of(st.just("1.2.840.10008.3.1.1.1"), uids()),
        protocol_version=st.one_of(st.just(1), _U16),
        unknown_items=st.lists(unknown_items(excluding=_TOP_LEVEL_KNOWN), max_size=2).map(tuple),
    )


def a_associate_acs() -> st.SearchStrategy[AAssociateAC]:
    return st.builds(
        AAssociateAC,
        called_ae_title=ae_titles(),
        calling_ae_title=ae_titles(),
        presentation_contexts=st.lists(presentation_contexts_ac(), min_size=1, max_size=4).map(
            tuple
        ),
        user_information=user_informations(),
        application_context_name=st.one_of(st.just("1.2.840.10008.3.1.1.1"), uids()),
        protocol_version=st.one_of(st.just(1), _U16),
        unknown_items=st.lists(unknown_items(excluding=_TOP_LEVEL_KNOWN), max_size=2).map(tuple),
    )


def a_associate_rjs() -> st.SearchStrategy[AAssociateRJ]:
    return st.builds(AAssociateRJ, result=_BYTE, source=_BYTE, reason=_BYTE)


def pdvs(*, max_size: int = 64) -> st.SearchStrategy[PDV]:
    return st.builds(
        PDV,
        context_id=st.one_of(context_ids(), _BYTE),
        control=st.one_of(st.integers(0, 3), _BYTE),
        data=st.binary(max_size=max_size),
    )


def p_data_tfs() -> st.SearchStrategy[PDataTF]:
    return st.builds(PDataTF, pdvs=st.lists(pdvs(), min_size=1, max_size=4).map(tuple))


def a_release_rqs() -> st.SearchStrategy[AReleaseRQ]:
    return st.just(AReleaseRQ())


def a_release_rps() -> st.SearchStrategy[AReleaseRP]:
    return st.just(AReleaseRP())


def a_aborts() -> st.SearchStrategy[AAbort]:
    return st.builds(AAbort, source=st.one_of(st.sampled_from((0, 2)), _BYTE), reason=_BYTE)


def pdus() -> st.SearchStrategy[PDU]:
    """Any of the seven PDUs."""
    return st.one_of(
        a_associate_rqs(),
        a_associate_acs(),
        a_associate_rjs(),
        p_data_tfs(),
        a_release_rqs(),
        a_release_rps(),
        a_aborts(),
    )

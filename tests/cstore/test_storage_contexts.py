"""Storage presentation contexts by name, the 128-context limit, any transfer syntax."""

from __future__ import annotations

import pytest
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit

from aiodimse import AE, evt
from aiodimse.events import Event
from aiodimse.presentation import (
    ALL_TRANSFER_SYNTAXES,
    STORAGE_SOP_CLASSES,
    AllStoragePresentationContexts,
    StoragePresentationContexts,
)

from ..aio._helpers import bounded, serving
from ._files import CT, instance


def test_every_storage_class_pydicom_knows_is_there_by_name() -> None:
    assert STORAGE_SOP_CLASSES["CTImageStorage"] == CT
    assert STORAGE_SOP_CLASSES["EnhancedMRImageStorage"] == "1.2.840.10008.5.1.4.1.1.4.1"
    assert "StorageCommitmentPushModel" not in STORAGE_SOP_CLASSES
    assert len(AllStoragePresentationContexts) == len(STORAGE_SOP_CLASSES) > 128
    assert len(StoragePresentationContexts) == 120


def test_contexts_can_be_named_by_keyword() -> None:
    ae = AE()
    ae.add_supported_context("CTImageStorage", "JPEGBaseline8Bit")
    (ctx,) = ae.supported_contexts
    assert ctx.abstract_syntax == CT and ctx.transfer_syntaxes == (JPEGBaseline8Bit,)
    with pytest.raises(ValueError, match="not a valid UID"):
        ae.add_supported_context("NoSuchImageStorage")


def test_requesting_over_128_contexts_fails_clearly() -> None:
    ae = AE()
    ae.requested_contexts = StoragePresentationContexts  # 120: fine
    with pytest.raises(ValueError, match=r"at most 128 .* only the SOP classes you will send"):
        ae.requested_contexts = AllStoragePresentationContexts


@pytest.mark.asyncio
async def test_an_scp_with_all_syntaxes_accepts_what_the_sender_offers() -> None:
    scp = AE("ARCHIVE")
    for cx in AllStoragePresentationContexts:
        scp.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    syntaxes: list[str] = []

    async def on_store(event: Event) -> int:
        syntaxes.append(event.context.transfer_syntax)
        return 0

    for ts in (JPEGBaseline8Bit, JPEG2000Lossless):
        scu = AE("MODALITY")
        scu.add_requested_context(CT, ts)
        async with serving([(evt.EVT_C_STORE, on_store)], ae=scp) as server, \
                scu.associate("127.0.0.1", server.port) as assoc:
            ds = instance(syntax=ts)
            ds.PixelData = b"\xff\xd8 not really compressed \xff\xd9"  # sent as stored
            status = await bounded(assoc.send_c_store(ds))
            assert status.Status == 0
    assert syntaxes == [JPEGBaseline8Bit, JPEG2000Lossless]

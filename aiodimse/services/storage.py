"""Storage SCP (PS3.4 Annex B) as a service: received instances into the archive.

Every storage SOP class pydicom knows, each in every transfer syntax pydicom knows:
an instance is accepted as its sender offers it and stored as received (nothing is
transcoded). The library streams each data set to a file in the archive's
``.incoming`` folder (``AE.store_to_file``, set by :meth:`StorageSCP.configure`),
so an instance of any size costs bounded memory; the handler hands that file to
the archive writer, which checks it, renames it into place and indexes it before
the C-STORE response goes: a storage commitment request right after finds it.

Answers: the library screens the data set first (0xC000 does not parse, 0xA900
another SOP Class or Instance than the command's, 0xA700 could not be written);
then the writer's ``InvalidInstance`` status, ``StoreError`` as
``store_status`` says (0xA700 when the disk is full, nothing left behind), else
0x0000, duplicates included (docs/archive.md: the policy is the writer's).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from .. import evt
from ..archive.layout import INCOMING
from ..archive.writer import ArchiveWriter, DuplicatePolicy, InvalidInstance
from ..datasets import encode_dataset
from ..events import Event
from ..handlers import Binding
from ..logs import get_logger
from ..presentation import ALL_TRANSFER_SYNTAXES, EXPLICIT_VR_LITTLE_ENDIAN, STORAGE_SOP_CLASSES
from ..store.interface import ArchiveIndex, StoreError
from .answers import status as _status
from .base import Service, SOPClass
from .store_status import store_comment, store_status

__all__ = ["StorageSCP", "STORAGE_CLASSES"]

log = get_logger("aiodimse.storage")

_C_STORE = 0x0001
STALE_AFTER = 3600.0
"""Seconds untouched after which a file in ``.incoming`` is a crash's leftover: a
transfer still going writes to its file (and one that stalls is aborted long
before, by the message timeout), so another process's file is never taken."""

STORAGE_CLASSES: tuple[str, ...] = tuple(dict.fromkeys(STORAGE_SOP_CLASSES.values()))
"""Every storage SOP class pydicom knows (the library's AllStoragePresentationContexts)."""


class StorageSCP(Service):
    """Stores what peers send under ``archive`` and indexes it in ``index``."""

    name = "storage"
    sop_classes = tuple(SOPClass(uid, transfer_syntaxes=ALL_TRANSFER_SYNTAXES)
                        for uid in STORAGE_CLASSES)

    def __init__(self, index: ArchiveIndex, archive: str | Path, *,
                 duplicates: DuplicatePolicy = "replace", fsync: bool = True) -> None:
        self.writer = ArchiveWriter(archive, index, duplicates=duplicates, fsync=fsync)
        self.stored = 0  # counters for the summary line
        self.duplicates = 0
        self.refused = 0

    @property
    def incoming(self) -> Path:
        """Where received data sets are streamed: in the archive (moved by a rename)."""
        return self.writer.root / INCOMING

    def configure(self, ae: Any) -> None:
        """Stream received instances to files in the archive's ``.incoming`` folder."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        ae.store_to_file = True
        ae.store_directory = str(self.incoming)

    async def start(self) -> None:
        """Remove what a crash left in ``.incoming`` (files untouched for an hour)."""
        removed = await asyncio.to_thread(self._remove_stale, time.time() - STALE_AFTER)
        if removed:
            log.info("removed %d partial instance file(s) left in %s", removed,
                     self.incoming)

    def _remove_stale(self, before: float) -> int:
        removed = 0
        try:
            entries = list(self.incoming.iterdir())
        except OSError:
            return 0
        for path in entries:
            try:
                if path.is_file() and path.stat().st_mtime < before:
                    path.unlink()
                    removed += 1
            except OSError as exc:
                log.warning("could not remove %s: %s", path, exc)
        return removed

    def handlers(self) -> list[Binding]:
        return [Binding(evt.EVT_C_STORE, self.on_c_store, uid) for uid in STORAGE_CLASSES]

    async def on_c_store(self, event: Event) -> int | Dataset:
        rq: Any = event.request
        sop_class = str(rq.AffectedSOPClassUID)
        sop_instance = str(rq.AffectedSOPInstanceUID)
        source = str(event.assoc.requestor.ae_title).strip() or None
        try:
            extra, context = event.extra, event.context
            path = extra.get("dataset_path")
            if path is not None:  # its first bytes too: the index keys are read there
                stored = await self.writer.store_received(
                    path, extra.get("dataset_start", b""),
                    context.transfer_syntax if context is not None else "",
                    sop_class_uid=sop_class, sop_instance_uid=sop_instance)
            else:  # a deflated context: the library inflated it in memory
                data = encode_dataset(event.dataset, EXPLICIT_VR_LITTLE_ENDIAN)
                stored = await self.writer.store_bytes(
                    data, EXPLICIT_VR_LITTLE_ENDIAN, sop_class_uid=sop_class,
                    sop_instance_uid=sop_instance, source_aet=source)
        except InvalidInstance as exc:
            self.refused += 1
            log.warning("C-STORE of %s from %s refused with 0x%04X: %s", sop_instance,
                        source, exc.status, exc)
            return _status(exc.status, str(exc))
        except StoreError as exc:
            self.refused += 1
            status = store_status(exc, _C_STORE)
            log.error("C-STORE of %s from %s: %s: answering 0x%04X", sop_instance, source,
                      exc, status)
            return _status(status, store_comment(exc, "archive"))
        self.stored += 1
        if stored.duplicate:
            self.duplicates += 1
            log.info("instance %s stored again (%s)", sop_instance,
                     "replaced" if stored.written else "kept the first")
        return 0x0000

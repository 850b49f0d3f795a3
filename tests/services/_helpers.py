"""In-process SCP fixtures for the service tests: a server with the services bound."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from aiodimse import AE, Server
from aiodimse.services import (
    MPPS,
    MPPSSCP,
    STORAGE_COMMITMENT,
    DeliveryPolicy,
    Peer,
    StorageCommitmentSCP,
)
from aiodimse.services.quotas import Quotas
from aiodimse.store.sqlite import SQLiteStore

__all__ = ["Running", "running_scp", "commit_request"]


@dataclass
class Running:
    server: Server
    store: SQLiteStore
    commitment: StorageCommitmentSCP


@asynccontextmanager
async def running_scp(
    data: Path,
    peers: dict[str, Peer] | None = None,
    policy: DeliveryPolicy | None = None,
    quotas: Quotas | None = None,
) -> AsyncIterator[Running]:
    store = SQLiteStore.in_directory(data)
    ae = AE("ARCHIVE")
    ae.add_supported_context(STORAGE_COMMITMENT)
    ae.add_supported_context(MPPS)
    reporter = AE("ARCHIVE")
    reporter.acse_timeout = reporter.dimse_timeout = reporter.connection_timeout = 5
    commitment = StorageCommitmentSCP(store, reporter, peers or {}, policy, quotas=quotas)
    server = await ae.start_server(
        ("127.0.0.1", 0),
        evt_handlers=[*commitment.handlers(), *MPPSSCP(store, quotas).handlers()],
    )
    await commitment.start()
    try:
        yield Running(server, store, commitment)
    finally:
        await server.shutdown(1.0)
        await commitment.stop(grace=1.0)
        await store.aclose()


def commit_request(transaction_uid: str, refs: list[tuple[str, str]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    items = []
    for cls, inst in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = cls
        item.ReferencedSOPInstanceUID = inst
        items.append(item)
    ds.ReferencedSOPSequence = items
    return ds

"""Run as a script: a server with the MPPS and commitment SCPs, and a peer sending
requests with distinct invalid 20 KB values; prints how many bytes of warning text
Python's warnings registries hold before and after (one JSON line).

A subprocess, so that the warning filters are Python's defaults (pytest's are not).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import warnings

from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from aiodimse import AE
from aiodimse.services import (
    MPPS,
    MPPSSCP,
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    StorageCommitmentSCP,
)
from aiodimse.store.sqlite import SQLiteStore

CT = "1.2.840.10008.5.1.4.1.1.2"


def registry_bytes() -> int:
    """Bytes of warning text kept by every module's registry and the once-registry."""
    total = 0
    registries = [getattr(m, "__warningregistry__", None) for m in list(sys.modules.values())]
    registries.append(warnings.onceregistry)  # type: ignore[attr-defined]
    for registry in registries:
        if isinstance(registry, dict):
            for key in list(registry):
                if isinstance(key, tuple) and key and isinstance(key[0], str):
                    total += len(key[0])
    return total


def element(tag: int, vr: str, value: object) -> DataElement:
    """As a careless peer builds it: without pydicom's validation (no client warning)."""
    return DataElement(tag, vr, value, validation_mode=config.IGNORE)


def bad_uid(i: int) -> str:
    return f"1.2.{i}." + "9x" * 10_000


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as data:
        store = SQLiteStore.in_directory(data)
        ae = AE("ARCHIVE")
        ae.add_supported_context(MPPS)
        ae.add_supported_context(STORAGE_COMMITMENT)
        commitment = StorageCommitmentSCP(store, AE("ARCHIVE"), {})
        server = await ae.start_server(
            ("127.0.0.1", 0), evt_handlers=[*commitment.handlers(), *MPPSSCP(store).handlers()]
        )
        client = AE("CT1")
        client.add_requested_context(MPPS)
        client.add_requested_context(STORAGE_COMMITMENT)
        client.maximum_pdu_size = 0
        before = registry_bytes()
        statuses: dict[str, int] = {}
        async with client.associate("127.0.0.1", server.port, ae_title="ARCHIVE") as assoc:
            for i in range(count):
                attrs = Dataset()
                attrs.add(element(0x00400252, "CS", "IN PROGRESS"))
                attrs.add(element(0x0020000D, "UI", bad_uid(i)))  # Study Instance UID
                attrs.add(element(0x00100020, "LO", f"{i}" + "p" * 20_000))  # Patient ID
                status, _ = await assoc.send_n_create(attrs, MPPS, f"1.2.3.{i + 1}")
                key = f"n-create 0x{int(status.Status):04X}"
                statuses[key] = statuses.get(key, 0) + 1
                info = Dataset()
                info.add(element(0x00081195, "UI", bad_uid(i)))  # Transaction UID
                item = Dataset()
                item.add(element(0x00081150, "UI", CT))
                item.add(element(0x00081155, "UI", bad_uid(i)))
                info.add(element(0x00081199, "SQ", [item]))
                status, _ = await assoc.send_n_action(info, 1, STORAGE_COMMITMENT,
                                                      STORAGE_COMMITMENT_INSTANCE)
                key = f"n-action 0x{int(status.Status):04X}"
                statuses[key] = statuses.get(key, 0) + 1
        after = registry_bytes()
        await server.shutdown(1.0)
        await store.aclose()
    print(json.dumps({"before": before, "after": after, "statuses": statuses}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

"""A Storage Commitment SCP of your own: it commits the DICOM files of a folder.

It indexes FOLDER into an SQLite database beside it, then answers Verification and
Storage Commitment as ARCHIVE on PORT: each request is recorded before it is
acknowledged, and its report (N-EVENT-REPORT) is sent on the requesting association
if that is still open, else on a new association to the requester, whose address
is given as TITLE@HOST:PORT; a report that cannot be delivered is retried.

Run: python3 commitment_scp.py PORT FOLDER TITLE@HOST:PORT...   (Ctrl-C stops it)
"""

import asyncio
import contextlib
import sys
import time
from pathlib import Path

from aiodimse import AE
from aiodimse.services import Peer, ServiceSet, StorageCommitmentSCP, VerificationSCP
from aiodimse.store import index_paths, open_store


def peers(texts: list[str]) -> dict[str, Peer]:
    """The AE table: where each requester listens for its report."""
    table = {}
    for text in texts:
        title, _, address = text.partition("@")
        host, _, port = address.rpartition(":")
        table[title] = Peer(host=host, port=int(port))
    return table


async def main(port: int, folder: str, requesters: list[str]) -> None:
    # The database: commitment requests, the reports owed, the index of FOLDER.
    store = open_store(Path(folder).resolve().parent / "commitment.sqlite3")
    try:
        indexed = await index_paths(store, [folder], time.time())
        print(f"indexed {indexed} instance(s)", flush=True)
        # The reporter is the AE that opens the associations for the reports.
        services = ServiceSet([VerificationSCP(),
                               StorageCommitmentSCP(store, AE("ARCHIVE"), peers(requesters))])
        server = await services.start_server(AE("ARCHIVE"), ("127.0.0.1", port))
        print(f"listening on port {server.port}", flush=True)
        try:
            await server.serve_forever()  # until Ctrl-C
        finally:
            # requests in progress and reports being sent get 5 s; owed reports stay
            # in the database and go out when the program runs again
            await services.shutdown(server, grace=5.0)
    finally:
        await store.aclose()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3:]))

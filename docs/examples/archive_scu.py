"""Store files in an archive, find their studies, get one back, and move it here.

Against ``aiodimse serve`` (or any Storage and Study Root Query/Retrieve SCP with
the AE title ARCHIVE): C-STORE each file named, C-FIND at the STUDY level, C-GET
the first study into a temporary folder on this association, then C-MOVE it to
an SCP this program runs on LISTEN_PORT. The archive must know where MY_SCU
listens (for ``aiodimse serve``: ``--peer MY_SCU@HOST:LISTEN_PORT``).

Run: python3 archive_scu.py HOST PORT LISTEN_PORT FILE...
"""

import asyncio
import sys
import tempfile
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from aiodimse import AE, build_role, evt

FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve Information Model - FIND
GET = "1.2.840.10008.5.1.4.1.2.2.3"
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
PENDING = (0xFF00, 0xFF01)


async def main(host: str, port: int, listen_port: int, paths: list[str]) -> int:
    classes = sorted({str(dcmread(p, stop_before_pixels=True).SOPClassUID) for p in paths})
    folder = Path(tempfile.mkdtemp())
    (folder / "got").mkdir()
    (folder / "moved").mkdir()

    def on_store(event, into: Path):
        """Received over C-GET or C-MOVE: the file is renamed into ``into``."""
        uid = event.request.AffectedSOPInstanceUID
        event.dataset_path.replace(into / f"{uid}.dcm")
        return 0x0000

    ae = AE("MY_SCU")
    ae.store_to_file = True  # instances we receive are streamed to files ...
    ae.store_directory = str(folder)  # ... here, so that a rename moves them
    for uid in (FIND, GET, MOVE, *classes):
        ae.add_requested_context(uid)
    for uid in classes:  # the C-MOVE destination accepts these
        ae.add_supported_context(uid)
    destination = await ae.start_server(
        ("0.0.0.0", listen_port), evt_handlers=[(evt.EVT_C_STORE, on_store, [folder / "moved"])])
    async with destination, ae.associate(
            host, port, ae_title="ARCHIVE",
            # both roles: we send these classes (C-STORE) and receive them (C-GET)
            ext_neg=[build_role(uid, scu_role=True, scp_role=True) for uid in classes],
            evt_handlers=[(evt.EVT_C_STORE, on_store, [folder / "got"])]) as assoc:
        stored = 0
        for path in paths:
            status = await assoc.send_c_store(path)
            stored += status.Status == 0x0000
        print(f"C-STORE: {stored} of {len(paths)} stored")

        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""  # empty: return it
        query.PatientID = ""
        query.NumberOfStudyRelatedInstances = ""
        studies = []
        async for status, identifier in assoc.send_c_find(query, FIND):
            if status.Status in PENDING:
                studies.append(identifier)
        print(f"C-FIND: {len(studies)} studies, status 0x{status.Status:04X}")
        if not studies:
            return 2

        wanted = Dataset()
        wanted.QueryRetrieveLevel = "STUDY"
        wanted.StudyInstanceUID = studies[0].StudyInstanceUID
        count = studies[0].NumberOfStudyRelatedInstances
        final = await last(assoc.send_c_get(wanted, GET))
        got = len(list((folder / "got").iterdir()))
        print(f"C-GET: {got} of {count} received, status 0x{final:04X}")
        final = await last(assoc.send_c_move(wanted, "MY_SCU", MOVE))
        moved = len(list((folder / "moved").iterdir()))
        print(f"C-MOVE: {moved} of {count} received, status 0x{final:04X}")
    return 0 if final == 0x0000 else 1


async def last(responses) -> int:
    """The final status of a C-GET or C-MOVE (the pending ones carry the counts so far)."""
    code = 0xC000
    async for status, _failed in responses:
        code = int(status.Status)
    return code


if __name__ == "__main__":
    host, port, listen_port, *files = sys.argv[1:]
    sys.exit(asyncio.run(main(host, int(port), int(listen_port), files)))

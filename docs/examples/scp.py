"""An SCP in a few lines: answers C-ECHO, and N-ACTION for Storage Commitment.

Run: python3 scp.py [PORT]   (then, from another terminal: python3 scu.py 127.0.0.1 PORT)
"""

import asyncio
import contextlib
import sys

from aiodimse import AE, evt

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"


async def on_n_action(event):
    refs = event.action_information.ReferencedSOPSequence  # decoded on first access
    print(f"N-ACTION from {event.assoc.requestor.ae_title}: {len(refs)} instance(s)")
    return 0x0000, None  # (status, reply data set or None)


async def main(port: int) -> None:
    ae = AE("MY_SCP")
    ae.add_supported_context("1.2.840.10008.1.1")  # Verification: C-ECHO needs no handler
    ae.add_supported_context(STORAGE_COMMITMENT)
    server = await ae.start_server(("127.0.0.1", port),
                                   evt_handlers=[(evt.EVT_N_ACTION, on_n_action)])
    print(f"listening on port {server.port}", flush=True)
    async with server:
        await server.serve_forever()  # until Ctrl-C


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 11112))

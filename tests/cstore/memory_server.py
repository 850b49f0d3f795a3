"""A storage SCP streaming to files, run as a subprocess by the memory tests.

Prints its port, then for each instance stored a line ``stored <size> <peak growth>``:
the data set file's size and the growth of the process's peak RSS (VmHWM) over its
RSS once listening, in bytes. Stops when stdin closes.
"""

from __future__ import annotations

import asyncio
import os
import sys

from aiodimse import AE, evt
from aiodimse.events import Event


def _status(key: str) -> int:
    with open("/proc/self/status") as fp:
        for line in fp:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(key)


async def main(directory: str) -> None:
    ae = AE("BIG_SCP")
    ae.add_supported_context("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")
    ae.store_to_file = True
    ae.store_directory = directory
    ae.dimse_timeout = ae.network_timeout = 120.0
    baseline = 0

    def on_store(event: Event) -> int:
        size = os.path.getsize(event.dataset_path)
        print("stored", size, _status("VmHWM") - baseline, flush=True)
        return 0x0000

    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=[(evt.EVT_C_STORE, on_store)])
    with open("/proc/self/clear_refs", "w") as fp:  # the peak starts again from here
        fp.write("5")
    baseline = _status("VmRSS")
    print("port", server.port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await server.shutdown(grace=1)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

"""``aiodimse ups subscribe|unsubscribe|watch`` as programs, against a Watch SCP."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path

from aiodimse.services.delivery import Peer
from aiodimse.services.ups.uids import GLOBAL_SUBSCRIPTION

from ..dcmtk_tools import free_port, run_program
from ..services.ups_fakes import FakeSource, subscribe_info, watch_scp, workitem

WI = "1.2.826.0.1.3680043.10.9.31"
WI2 = "1.2.826.0.1.3680043.10.9.32"
AIODIMSE = (sys.executable, "-m", "aiodimse")


async def test_subscribe_and_unsubscribe_tools(tmp_path: Path) -> None:
    source = FakeSource(workitem(WI, WorklistLabel="CT"), workitem(WI2, WorklistLabel="MR"))
    async with watch_scp(tmp_path, source,
                         {"RIS": Peer(host="127.0.0.1", port=free_port())}) as scp:
        port = str(scp.server.port)
        base = (*AIODIMSE, "ups")
        code, out = await run_program(*base, "subscribe", "127.0.0.1", port, "-aet", "RIS",
                                      "-i", WI, "--deletion-lock")
        assert code == 0, out
        assert await scp.store.ups_subscribers(WI) == [("RIS", True)]
        code, out = await run_program(*base, "subscribe", "127.0.0.1", port, "-aet", "X",
                                      "-r", "RIS", "--filtered", "-k", "WorklistLabel=MR",
                                      "--json")
        assert code == 0, out
        assert json.loads(out)["status"] == 0
        assert await scp.store.ups_subscribers(WI2) == [("RIS", False)]
        subs = await scp.store.ups_global_subscriptions()
        assert [s.aet for s in subs] == ["RIS"] and "MR" in str(subs[0].filter)
        code, out = await run_program(*base, "subscribe", "127.0.0.1", port, "-aet", "RIS",
                                      "-i", "1.2.3.4")
        assert code == 2 and "0xC307" in out  # no such workitem: a failure status
        code, out = await run_program(*base, "unsubscribe", "127.0.0.1", port, "-aet", "RIS",
                                      "--global", "--suspend")
        assert code == 0, out
        assert (await scp.store.ups_global_subscriptions())[0].suspended
        code, out = await run_program(*base, "unsubscribe", "127.0.0.1", port, "-aet", "RIS",
                                      "--global")
        assert code == 0, out
        assert await scp.store.ups_subscriber_aets() == []
        code, out = await run_program(*base, "subscribe", "127.0.0.1", port, "-i", WI,
                                      "-k", "WorklistLabel=MR")
        assert code == 3 and "--filtered" in out and "Traceback" not in out


async def test_watch_prints_each_report_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *AIODIMSE, "ups", "watch", "--host", "127.0.0.1", "--port", str(port), "-aet", "RIS",
        "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 20)
        assert b"listening" in line
        source = FakeSource(workitem(WI))
        async with watch_scp(tmp_path, source,
                             {"RIS": Peer(host="127.0.0.1", port=port)}) as scp:
            assert (await scp.action(3, WI, subscribe_info("RIS")))[0] == 0
            first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
            await scp.service.state_changed(source.put(workitem(WI, "IN PROGRESS")), None)
            second = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        third = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert (first["event_type"], first["instance"]) == (1, WI)
        assert first["event"] == "UPS State Report"
        assert first["information"]["00741000"]["Value"] == ["SCHEDULED"]
        assert second["information"]["00741000"]["Value"] == ["IN PROGRESS"]
        assert (third["event_type"], third["instance"]) == (4, GLOBAL_SUBSCRIPTION)
        assert first["calling_aet"] == "UPS_SCP"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_watch_text_lines_and_count(tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *AIODIMSE, "ups", "watch", "--host", "127.0.0.1", "--port", str(port), "-aet", "RIS",
        "--count", "1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        await asyncio.wait_for(proc.stderr.readline(), 20)
        source = FakeSource(workitem(WI))
        async with watch_scp(tmp_path, source,
                             {"RIS": Peer(host="127.0.0.1", port=port)}) as scp:
            assert (await scp.action(3, WI, subscribe_info("RIS")))[0] == 0
            out = await asyncio.wait_for(proc.stdout.read(), 20)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
        assert out.decode().splitlines() == [
            f"UPS State Report instance={WI} from=UPS_SCP InputReadinessState=READY "
            "ProcedureStepState=SCHEDULED"]
        with socket.socket() as busy:  # a port in use: one line, exit 3
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            code, text = await run_program(*AIODIMSE, "ups", "watch", "--host", "127.0.0.1",
                                           "--port", str(busy.getsockname()[1]))
        assert code == 3 and text.startswith("aiodimse ups watch: cannot listen")
        assert len(text.strip().splitlines()) == 1
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

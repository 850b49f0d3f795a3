"""``aiodimse commit --listen-port`` releasing while the report goes out: both sides agree.

The tool releases the request association as soon as the N-ACTION is answered; the
SCP sends the report on that association if it is still open. When the A-RELEASE-RQ
crosses the N-EVENT-REPORT, the tool (in Sta7) may not answer it (PS3.8 7.2.2), so
the SCP must not count it as delivered and must send it again on a new association,
and the tool must not count it either. Run many times: each run, the tool's report and
the SCP's record must say the same thing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from aiodimse.association import Association
from aiodimse.cli.commit import run_commit
from aiodimse.cli.main import build_parser
from aiodimse.services import DeliveryPolicy, Peer

from ._helpers import running_scp

CT = "1.2.840.10008.5.1.4.1.1.2"
RUNS = 100


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_release_racing_the_report_serve_and_commit_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    listen = _free_port()
    policy = DeliveryPolicy(retry_initial=0.05, retry_max=0.2)  # same association first
    peers = {"MODALITY": Peer(host="127.0.0.1", port=listen)}
    parser = build_parser()
    ways: Counter[str] = Counter()
    async with running_scp(tmp_path, peers, policy) as scp:
        store = scp.store
        # Three orders, in turn: 0, the report first, the release a little later; 1,
        # the tool sends its A-RELEASE-RQ just after the SCP has sent the report on
        # the request association (the two cross); 2, the SCP holds the report back
        # until the request association has closed.
        send_action = Association.send_n_action
        send_report = Association.send_n_event_report
        report_sent = asyncio.Event()
        closed = threading.Event()
        mode = [0]

        async def sending_action(assoc: Association, *a: Any, **k: Any) -> Any:
            answer = await send_action(assoc, *a, **k)  # the tool releases after this
            if mode[0] in (0, 1):
                await report_sent.wait()  # (run_commit has a timeout)
            if mode[0] == 0:
                await asyncio.sleep(0.02)
            assoc.on_end(lambda _a: closed.set())
            return answer

        async def sending_report(assoc: Association, *a: Any, **k: Any) -> Any:
            if assoc.is_acceptor:
                report_sent.set()  # the tool wakes after the report below is written
            return await send_report(assoc, *a, **k)

        monkeypatch.setattr(Association, "send_n_action", sending_action)
        monkeypatch.setattr(Association, "send_n_event_report", sending_report)
        find = store.db.find_instances

        def held_find(uids: list[str]) -> dict[str, str]:  # runs on the store thread
            if mode[0] == 2:
                assert closed.wait(10)
            return find(uids)

        store.db.find_instances = held_find  # type: ignore[method-assign]
        began = time.monotonic()
        for run in range(RUNS):
            assert time.monotonic() - began < 240, "hang guard"
            mode[0] = run % 3
            report_sent.clear()
            closed.clear()
            transaction = str(generate_uid())
            args = parser.parse_args([
                "commit", "127.0.0.1", str(scp.server.port), "-aec", "ARCHIVE",
                "-aet", "MODALITY", "-u", f"{CT}:1.2.3.{run}", "--transaction-uid",
                transaction, "--listen-port", str(listen), "--listen-host", "127.0.0.1",
                "--wait", "10", "--json",
            ])
            code = await asyncio.wait_for(run_commit(args), 30)
            out = capsys.readouterr().out
            assert code == 1, (run, code, out)  # the report came: instance not committed
            seen = json.loads(out)
            assert seen["transaction_uid"] == transaction
            ways[seen["received_on"]] += 1
            # The tool printed the report: serve must record it delivered, once.
            deadline = time.monotonic() + 10
            while True:
                state = await store.commitment_state(transaction)
                assert state is not None
                if state[0] != "pending":
                    break
                assert time.monotonic() < deadline, (run, state, dict(ways))
                await asyncio.sleep(0.01)
            assert state[0] == "delivered", (run, state)
        assert await store.count_pending() == 0
        print(dict(ways))  # which association carried the reports (not asserted)

"""Peer-supplied text in the log: escaped, bounded, and folded when it repeats (issue 18)."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from aiodimse import Event, evt
from aiodimse.wire import encode_pdu
from aiodimse.wire.pdus import AAssociateRQ

from ..ul.helpers import make_rq
from ._helpers import MPPS, RawDataset, bounded, make_scp_ae, make_scu_ae, serving

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@contextmanager
def captured_log(level: int = logging.INFO) -> Iterator[io.StringIO]:
    """What aiodimse logs at ``level`` and above, formatted as ``aiodimse serve`` does."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger = logging.getLogger("aiodimse")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


async def test_crlf_in_calling_ae_title_cannot_forge_a_log_line() -> None:
    evil = "X\r\n1 CRITICAL !!"  # 16 characters: one AE title field
    rq = make_rq()
    rq = AAssociateRQ(called_ae_title=rq.called_ae_title, calling_ae_title=evil,
                      presentation_contexts=rq.presentation_contexts,
                      user_information=rq.user_information)
    scp = make_scp_ae()
    scp.require_calling_aet = ["GOOD"]
    with captured_log() as out:
        async with serving(ae=scp) as server:
            reader, writer = await bounded(asyncio.open_connection("127.0.0.1", server.port))
            try:
                writer.write(encode_pdu(rq))
                assert (await bounded(reader.readexactly(1))) == b"\x03"  # A-ASSOCIATE-RJ
            finally:
                writer.close()
    lines = [line for line in out.getvalue().splitlines() if "rejected association" in line]
    assert len(lines) == 1, out.getvalue()
    assert "X\\x0d\\x0a1 CRITICAL !!" in lines[0]
    assert not any(line.startswith("1 CRITICAL") for line in out.getvalue().splitlines())
    assert "\r" not in out.getvalue()


async def test_a_thousand_bad_requests_log_a_bounded_number_of_bytes(raw_encoding: None
                                                                     ) -> None:
    """An undecodable data set per request: one WARNING line, folded, no traceback."""

    async def on_create(event: Event) -> tuple[int, Any]:
        return 0x0000, event.attribute_list.PatientName  # decodes: raises

    broken = RawDataset(b"\x10\x00\x10\x00\xff\xff")  # cut in its header
    with captured_log() as out:
        async with serving([(evt.EVT_N_CREATE, on_create)]) as server:
            assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
            for i in range(1000):
                status, _ = await bounded(assoc.send_n_create(broken, MPPS, f"1.2.3.{i + 1}"))
                assert status.Status == 0x0110
            await bounded(assoc.release())
    text = out.getvalue()
    warnings = [line for line in text.splitlines() if "handler raised" in line]
    assert 1 <= len(warnings) <= 3, text[:3000]  # folded: 10 s windows
    assert "Traceback" not in text  # at DEBUG only
    assert len(text.encode()) < 4096


async def test_tracebacks_stay_at_debug_with_the_exception_text_escaped() -> None:
    async def on_create(event: Event) -> tuple[int, Any]:
        raise ValueError("bad\r\nUID 1.2.3")

    with captured_log(logging.DEBUG) as out:
        async with serving([(evt.EVT_N_CREATE, on_create)]) as server:
            assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
            status, _ = await bounded(assoc.send_n_create(None, MPPS, "1.2.3.4"))
            assert status.Status == 0x0110
            await bounded(assoc.release())
    text = out.getvalue()
    assert "Traceback (most recent call last)" in text
    assert "ValueError: bad\\x0d\\x0aUID 1.2.3" in text
    assert "\r" not in text
    assert (" WARNING aiodimse.association EVT_N_CREATE handler raised ValueError for "
            "TEST_SCU@127.0.0.1") in text


def test_filter_cuts_long_messages_and_counts_repeats(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    from aiodimse import logs

    clock = [100.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    logger = logs.get_logger("aiodimse.test-logs")
    assert logs.get_logger("aiodimse.test-logs") is logger
    assert sum(isinstance(f, logs.PeerSafeFilter) for f in logger.filters) == 1
    with captured_log() as out:
        logger.info("uid %s", "1" * 100_000)
        for _ in range(57):
            logger.warning("bad request from %s", "CT1@10.0.0.1")
        logger.warning("bad request from %s", "MR1@10.0.0.2")  # another peer: written
        clock[0] += logs.FOLD_WINDOW + 1
        logger.warning("bad request from %s", "CT1@10.0.0.1")
        logger.info("info lines are %s folded", "never")
        logger.info("info lines are %s folded", "never")
    lines = out.getvalue().splitlines()
    assert len(lines[0]) < logs.MAX_MESSAGE + 200
    assert lines[0].endswith(f"({100_004 - logs.MAX_MESSAGE} more characters)")
    assert [line.split(" ", 3)[3] for line in lines[1:]] == [
        "aiodimse.test-logs bad request from CT1@10.0.0.1",
        "aiodimse.test-logs bad request from MR1@10.0.0.2",
        "aiodimse.test-logs bad request from CT1@10.0.0.1 (repeated 56 times in the last 11 s)",
        "aiodimse.test-logs info lines are never folded",
        "aiodimse.test-logs info lines are never folded",
    ]


def test_every_aiodimse_logger_escapes() -> None:
    """One mechanism: no module takes a logger from ``logging`` directly."""
    import importlib
    import pkgutil

    import aiodimse
    from aiodimse import logs

    with_log = 0
    for info in pkgutil.walk_packages(aiodimse.__path__, "aiodimse."):
        module = importlib.import_module(info.name)
        log = getattr(module, "log", None)
        if isinstance(log, logging.Logger):
            with_log += 1
            assert any(isinstance(f, logs.PeerSafeFilter) for f in log.filters), info.name
    assert with_log >= 12


def test_the_fold_table_keeps_no_peer_text() -> None:
    """Folding remembers a warning by its text's hash: peers choose that text."""
    from aiodimse.logs import PeerSafeFilter

    filt = PeerSafeFilter()
    secret = "1.2." + "9" * 1500
    record = logging.LogRecord("aiodimse.x", logging.WARNING, __file__, 1,
                               "bad UID %s", (secret,), None)
    assert filt.filter(record)
    again = logging.LogRecord("aiodimse.x", logging.WARNING, __file__, 1,
                              "bad UID %s", (secret,), None)
    assert not filt.filter(again)  # folded
    assert all(secret not in str(key) for key in filt._seen)

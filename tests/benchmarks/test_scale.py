"""One aiodimse server holds 10,000 concurrent associations, all still answering.

The scale the server is built for, checked in CI with the benchmark harness: two
worker processes open the associations (raw PDUs), hold them, then send one C-ECHO on
each.
No timing assertion: only that every association was established and answered.
"""

from __future__ import annotations

from benchmarks.load import LoadSpec, measure
from benchmarks.procs import server

ASSOCIATIONS = 10_000


def test_server_holds_10000_associations_each_answering_c_echo() -> None:
    with server("aiodimse-scale", "benchmarks.servers.aiodimse_scp", ["--loop", "asyncio"]) as srv:
        result = measure(
            LoadSpec(
                mode="idle",
                port=srv.port,
                n_assoc=ASSOCIATIONS,
                op="echo",
                duration=60.0,
                setup_timeout=120.0,
                keep_latencies=False,
                connect_concurrency=256,
            ),
            server_pid=srv.pid,
            procs=2,
        )
        assert srv.alive()
    assert result.setup_failures == 0, result.errors[:5]
    assert result.established == ASSOCIATIONS, result.errors[:5]
    assert result.ok == ASSOCIATIONS, result.errors[:5]
    assert result.failures == 0, result.errors[:5]

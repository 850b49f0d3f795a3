"""The server CPU reading of the benchmark: exact below a clock tick, and not losing
the time of threads that end between two samples."""

from __future__ import annotations

import os
import threading
import time

from benchmarks.procs import CpuSample, cpu_between, cpu_sample


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_short_busy_spans_are_measured_below_a_clock_tick() -> None:
    before = cpu_sample(os.getpid())
    _spin(0.004)  # less than one 10 ms tick
    used = cpu_between(before, cpu_sample(os.getpid()))
    assert 0.004 <= used < 0.5


def _gone(native_id: int | None, limit: float = 5.0) -> None:
    """Wait until the kernel has removed the thread (join returns a little before)."""
    task = f"/proc/{os.getpid()}/task/{native_id}"
    deadline = time.monotonic() + limit
    while os.path.exists(task):
        assert time.monotonic() < deadline, f"{task} still there after {limit} s"
        time.sleep(0.001)


def test_the_time_of_a_thread_that_ended_is_kept() -> None:
    before = cpu_sample(os.getpid())
    worker = threading.Thread(target=_spin, args=(0.2,))
    worker.start()
    worker.join()
    _gone(worker.native_id)
    after = cpu_sample(os.getpid())
    assert after.exact - before.exact < 0.1  # the ended thread left the exact sum
    assert cpu_between(before, after) >= 0.15  # the tick count still has it


def test_without_exact_counts_ticks_are_used() -> None:
    nan = float("nan")
    assert cpu_between(CpuSample(1.0, nan), CpuSample(1.25, nan)) == 0.25
    assert cpu_between(CpuSample(1.0, 5.0), CpuSample(1.01, 5.013)) == 5.013 - 5.0

"""The blocking-call detector used by the control-surface tests can fail."""

from __future__ import annotations

import time

import pytest
import trio
from noblock import BlockingCallDetector, no_blocking_calls


async def block_the_loop() -> None:
    async with no_blocking_calls():
        await trio.lowlevel.checkpoint()
        time.sleep(0.02)  # noqa: ASYNC251 - the point of the test
        await trio.lowlevel.checkpoint()


async def test_a_blocking_sleep_on_the_loop_is_caught() -> None:
    with pytest.raises(AssertionError, match="the event loop was blocked"):
        await block_the_loop()


async def test_busy_cpu_and_awaiting_are_not_blocking() -> None:
    async with no_blocking_calls() as detector:
        deadline = time.perf_counter() + 0.02
        while time.perf_counter() < deadline:  # on the CPU the whole step
            pass
        # A real wait on purpose: the detector must not flag it.
        await trio.sleep(0.02)  # the loop waits, no task step blocks (under test, noqa)
        await trio.to_thread.run_sync(time.sleep, 0.02)  # blocks a worker, not the loop
    assert isinstance(detector, BlockingCallDetector)
    assert detector.offenders == []

"""A Trio instrument that catches blocking calls on the event-loop thread.

Between ``before_task_step`` and ``after_task_step`` a task runs on the loop
thread; any time that step spends *asleep in the kernel* (a blocking ioctl,
``tcdrain``, ``time.sleep``, a lock) is time the loop could not run. Wall time
alone cannot tell that from being preempted on a busy machine, so the
instrument reads the thread's scheduler statistics
(``/proc/thread-self/schedstat``: time on CPU, time waiting for a CPU) and
counts only the rest, the time spent blocked. That keeps the check strict
(a few ms) without failing when the CI machine is loaded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

SCHEDSTAT = Path("/proc/thread-self/schedstat")
#: Longest a task step may sleep in the kernel.
LIMIT = 0.005


def _clock() -> tuple[int, int]:
    """(wall ns, on-CPU + waiting-for-CPU ns) of this thread."""
    wall = time.perf_counter_ns()
    try:
        on_cpu, waiting, _ = (int(x) for x in SCHEDSTAT.read_text().split())
    except OSError:  # no schedstat: fall back to CPU time, which hides preemption less well
        return wall, time.thread_time_ns()
    return wall, on_cpu + waiting


class BlockingCallDetector(trio.abc.Instrument):
    """Records every task step that slept in the kernel longer than *limit* seconds."""

    def __init__(self, limit: float = LIMIT) -> None:
        self.limit = limit
        self.offenders: list[tuple[str, float]] = []
        self._start: tuple[int, int] | None = None

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._start = _clock()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self._start is None:
            return
        wall, busy = _clock()
        blocked = ((wall - self._start[0]) - (busy - self._start[1])) / 1e9
        self._start = None
        if blocked > self.limit:
            self.offenders.append((task.name, blocked))


@asynccontextmanager
async def no_blocking_calls(limit: float = LIMIT) -> AsyncIterator[BlockingCallDetector]:
    """Fail if a task step inside the block sleeps in the kernel for more than *limit*."""
    detector = BlockingCallDetector(limit)
    trio.lowlevel.add_instrument(detector)
    try:
        yield detector
    finally:
        trio.lowlevel.remove_instrument(detector)
    assert not detector.offenders, (
        f"the event loop was blocked (task, seconds blocked): {detector.offenders}"
    )

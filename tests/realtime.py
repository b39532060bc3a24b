"""A hang guard for tests on trio's autojump clock.

Under the autojump clock a trio deadline is virtual. Bytes written to a pty
reach the other side through a kernel worker, a moment later: while they are
in flight every task is blocked, so the clock jumps straight to the nearest
deadline. A ``fail_after`` meant only to turn a hang into a failure then fires
at once. The guard here counts wall time on a timer thread instead, and only
cancels; it never asserts how long anything took.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import trio


@contextmanager
def real_time_limit(seconds: float) -> Iterator[None]:
    """Fail the block if it is still running after *seconds* of wall time."""
    token = trio.lowlevel.current_trio_token()
    with trio.CancelScope() as scope:
        timer = threading.Timer(seconds, token.run_sync_soon, (scope.cancel,))
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join()  # a firing timer has queued its cancel before the run can end
    if scope.cancelled_caught:
        raise AssertionError(f"still running after {seconds} s of wall time")

"""A wall-clock deadline for every Trio test: a hang fails in seconds, with its stacks.

pytest-trio runs each async test, with its async fixtures, in one
``trio.run``; this plugin wraps that run. When the deadline passes, a
watchdog thread dumps every thread's stack (:mod:`faulthandler`) to stderr
and has the loop cancel the test; the failure names the deadline and shows
where each task was waiting. The default is the ``trio_test_deadline`` ini
value; a test that needs longer says so with
``@pytest.mark.deadline(seconds)``.

The clock is the wall clock, so tests on ``autojump_clock`` are bounded too.
What this cannot end: a loop blocked in a syscall (no task runs to be
cancelled) or a test that shields itself; pytest's ``faulthandler_timeout``
stays behind those. Sync tests (``anyio.run`` ones) keep their own
``fail_after``.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.lowlevel

#: Seconds, unless the ini file or a marker says otherwise: far above what
#: any test here takes on a loaded 2-core machine, far below a CI job's patience.
DEFAULT_DEADLINE = 20.0

Run = Callable[..., Any]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "trio_test_deadline",
        "seconds (wall clock) a Trio test may run before it is cancelled and fails",
        default=str(DEFAULT_DEADLINE),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "deadline(seconds): this Trio test may run for *seconds* (wall clock) instead of "
        "the trio_test_deadline ini value",
    )


@pytest.hookimpl(trylast=True)  # after pytest-trio has marked the async tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    default = _seconds(config.getini("trio_test_deadline"), "the trio_test_deadline ini value")
    for item in items:
        if item.get_closest_marker("trio") is None:
            continue
        run: Run = next(
            (m.kwargs["run"] for m in item.iter_markers("trio") if "run" in m.kwargs), trio.run
        )
        marker = item.get_closest_marker("deadline")
        seconds = default
        if marker is not None:
            value = marker.args[0] if len(marker.args) == 1 else marker.args
            seconds = _seconds(value, f"@pytest.mark.deadline on {item.nodeid}")
        # pytest-trio takes the closest trio marker's run=: put ours first.
        item.add_marker(
            pytest.mark.trio(run=functools.partial(run_with_deadline, seconds, run)), append=False
        )


def _seconds(value: object, what: str) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise pytest.UsageError(f"{what} must be a number of seconds > 0, got {value!r}")
    return seconds


def run_with_deadline(
    seconds: float, run: Run, afn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
) -> Any:
    """``run(afn, *args, **kwargs)``, cancelled and failed after *seconds*."""
    expired = threading.Event()
    stacks: list[str] = []

    async def main() -> Any:
        token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:

            def cancel() -> None:  # in the loop
                stacks.append(task_stacks())
                scope.cancel()

            def expire() -> None:  # in the watchdog thread
                expired.set()
                dump_threads(seconds)
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(cancel)

            watchdog = threading.Timer(seconds, expire)
            watchdog.daemon = True
            watchdog.start()
            try:
                return await afn(*args)
            finally:
                watchdog.cancel()
                if expired.is_set():
                    pytest.fail(
                        f"the test was still running after its {seconds:g} s deadline "
                        f"(@pytest.mark.deadline(seconds) gives a slow test more); "
                        f"its tasks were waiting here:\n{''.join(stacks)}",
                        pytrace=False,
                    )

    return run(main, **kwargs)


def task_stacks() -> str:
    """Where every task of this run is waiting, as an indented tree."""
    lines: list[str] = []

    def walk(task: trio.lowlevel.Task, depth: int) -> None:
        indent = "  " * depth
        lines.append(f"{indent}task {task.name}\n")
        for frame, lineno in task.iter_await_frames():
            code = frame.f_code
            lines.append(f"{indent}  {code.co_filename}:{lineno} in {code.co_name}\n")
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, depth + 1)

    root = trio.lowlevel.current_root_task()
    assert root is not None  # called from inside the run
    walk(root, 0)
    return "".join(lines)


def dump_threads(seconds: float) -> None:
    """Every thread's stack on stderr, as pytest's ``faulthandler_timeout`` prints them."""
    sys.stderr.write(f"\n+++ deadline: test still running after {seconds:g} s +++\n")
    sys.stderr.flush()
    try:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    except (AttributeError, ValueError, OSError):  # stderr captured with no fd (capsys)
        for ident, frame in sys._current_frames().items():
            sys.stderr.write(f"thread {ident}:\n{''.join(traceback.format_stack(frame))}")

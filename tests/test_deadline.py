"""The default per-test deadline (tests/trio_deadline.py), run on small test files by pytester.

Each inner session runs in a subprocess with a timeout of its own, so a
deadline that does not work fails here instead of hanging the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).parent
INI = """
[pytest]
trio_mode = true
trio_test_deadline = 1
addopts = -p no:cacheprovider
"""
CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from trio_deadline import pytest_addoption, pytest_collection_modifyitems, pytest_configure
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    return pytester


def test_a_hang_fails_at_the_deadline_with_the_stacks(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import trio

        async def test_hangs():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever, name="stuck-helper")
                await trio.Event().wait()

        async def test_finishes():
            await trio.lowlevel.checkpoint()
        """
    )
    result = inner.runpytest_subprocess(timeout=60)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test was still running after its 1 s deadline*",
            "*task stuck-helper*",
            "*in sleep_forever*",
            "*in test_hangs*",
        ]
    )
    result.stdout.fnmatch_lines(["*+++ deadline: test still running after 1 s +++*"])


def test_the_marker_gives_a_slow_test_more(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        import trio

        @pytest.mark.deadline(30)
        async def test_slow():
            await trio.sleep(1.5)  # the subject here is wall time itself

        async def test_too_slow():
            await trio.sleep(30)
        """
    )
    result = inner.runpytest_subprocess(timeout=60)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*_ test_too_slow _*", "*still running after its 1 s deadline*"])


def test_wall_clock_even_on_autojump_and_in_fixtures(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        import trio

        async def test_virtual_time_is_free(autojump_clock):
            await trio.sleep(3600)

        async def test_a_real_wait_on_autojump_still_ends(autojump_clock):
            await trio.to_thread.run_sync(__import__("time").sleep, 30, abandon_on_cancel=True)

        @pytest.fixture
        async def stuck():
            await trio.sleep_forever()

        async def test_a_stuck_fixture(stuck):
            pass
        """
    )
    result = inner.runpytest_subprocess(timeout=60)
    result.assert_outcomes(passed=1, failed=2)


def test_a_bad_marker_is_a_usage_error(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.deadline("soon")
        async def test_x():
            pass
        """
    )
    result = inner.runpytest_subprocess(timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*deadline on test_a_bad_marker_is_a_usage_error.py::test_x*"])

"""The plugin attaches the transcripts of the sessions a failing test opened to its report."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PLUGIN_ARGS = ("-p", "no:trioserial", "-p", "trioserial.testing._plugin")

INNER = r"""
import pytest
import trio

from trioserial import Shell
from trioserial.testing import PosixShell, open_pty_pair


@pytest.fixture
async def shell():
    port, pty = await open_pty_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(PosixShell(prompt="box# ").run, pty)
        shell = Shell(port, prompt="box# ")
        with trio.fail_after(10):
            await shell.wait_ready()
        yield shell
        port.close()
        pty.hang_up()
        nursery.cancel_scope.cancel()


async def test_passes(shell):
    assert await shell.run_check("echo quiet-pass") == "quiet-pass\n"


async def test_fails(shell):
    assert await shell.run_check("echo loud-fail") == "something else\n"


async def test_fails_without_session():
    assert False, "no session here"
"""


def test_failed_test_reports_carry_the_transcripts(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest(*PLUGIN_ARGS, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    # One section, for the session of the failing test, with its stamped lines.
    assert out.count("trioserial transcript: shell on /dev/pts/") == 1
    result.stdout.re_match_lines(
        [
            r".*trioserial transcript: shell on /dev/pts/\d+.*",
            r"\[ *\d+\.\d{6}\] >>> echo '__TS''\w+_2__'; echo loud-fail; .*",
        ]
    )
    result.stdout.fnmatch_lines(["*] loud-fail"])
    assert "quiet-pass" not in out

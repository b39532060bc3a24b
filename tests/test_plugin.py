"""The pytest plugin, run in an inner pytest session with pytester."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

#: Load our plugin by module, with the installed entry point (if any) blocked,
#: so the inner run is the same whether or not trioserial is pip-installed.
PLUGIN_ARGS = ("-p", "no:trioserial", "-p", "trioserial.testing._plugin")

INNER_TESTS = r"""
import re

import pytest
import trio

from trioserial import Expect
from trioserial.testing import AtModem, BootLogDevice, LineShell


async def test_default_device_echoes(serial_device):
    await serial_device.send_all(b"hello")
    with trio.fail_after(5):
        await Expect(serial_device).expect(b"hello")


@pytest.mark.parametrize("serial_device", [AtModem(), AtModem], indirect=True)
async def test_indirect_parametrization(serial_device):
    ex = Expect(serial_device)
    with trio.fail_after(5):
        await ex.sendline("ATI")
        await ex.expect("OK\r\n")
    assert b"trioserial fake modem" in ex.before


@pytest.mark.fake_device(BootLogDevice(["booted"], password=None), baudrate=9600)
async def test_marker_chooses_device_and_settings(serial_device):
    assert serial_device.settings.baudrate == 9600
    ex = Expect(serial_device, encoding="utf-8")
    with trio.fail_after(5):
        await ex.expect("login: ")
        assert "booted" in ex.before
        await ex.sendline("root")
        await ex.expect("# ")
        await ex.sendline("echo ok")
        assert (await ex.expect(re.compile(r"(\w+)\r\n# "))).match.group(1) == "ok"


async def test_factory_makes_several(serial_device_factory):
    modem = await serial_device_factory(AtModem())
    shell = await serial_device_factory(LineShell(prompt="> "), baudrate=57600)
    assert shell.settings.baudrate == 57600
    with trio.fail_after(5):
        await Expect(shell).expect(b"> ")
        await modem.send_all(b"AT\r")
        await Expect(modem).expect(b"OK")


async def test_devices_stuck_in_a_handler_are_cancelled(serial_device_factory):
    shell = LineShell(commands={"hang": lambda args: trio.sleep_forever()})
    port = await serial_device_factory(shell)
    await port.send_all(b"hang\r")
    with trio.fail_after(5):
        await Expect(port).expect(b"hang\r\n")


async def test_pty_pair(serial_pty_pair):
    port, device = serial_pty_pair
    await device.send_all(b"x")
    with trio.fail_after(5):
        assert await port.receive() == b"x"


@pytest.mark.fake_device(AtModem(), AtModem())
async def test_marker_with_two_devices(serial_device):
    pass


@pytest.mark.fake_device("not a device")
async def test_marker_with_a_non_device(serial_device):
    pass
"""


def test_fixtures_in_an_inner_session(pytester: pytest.Pytester, no_fd_leaks: None) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\naddopts = --strict-markers\n")
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest(*PLUGIN_ARGS, "-v")
    # pytest-trio runs async fixtures inside the test: a fixture's error fails the test.
    result.assert_outcomes(passed=7, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_marker_with_two_devices FAILED*",
            "*test_marker_with_a_non_device FAILED*",
            "*fake_device takes one device and keyword port settings, got 2 positional*",
            "*needs a trioserial.testing.FakeDevice*got 'not a device'*",
        ]
    )


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN_ARGS, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.fake_device(device, **settings):*"])


def test_entry_point_is_declared() -> None:
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert (
        '[project.entry-points.pytest11]\ntrioserial = "trioserial.testing._plugin"\n' in pyproject
    )

"""reconfigure() on a pty: termios changes a pty really keeps, read back from the kernel.

A pty keeps the rate (including termios2 custom rates), stop bits, IXON/IXOFF,
CRTSCTS, VMIN/VTIME and its buffered bytes, so all of that is checked on the
real thing. (It refuses or drops CS7 and parity, so those are checked on
the attribute list we build; that the read-back catches a dropped part is
checked on a pty asked directly.) DTR/RTS cannot be seen on a pty: the
``ioctl`` seam shows that reconfigure sends no modem-line or flush request.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import termios
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from noblock import no_blocking_calls
from tty_helpers import get_baudrate, get_vmin_vtime

from trioserial import (
    AsyncSerial,
    Parity,
    PortBusyError,
    SerialSettings,
    StopBits,
    _termios,
)
from trioserial.testing import FakeModem, PtyDevice, open_pty_pair


@pytest.fixture(autouse=True)
async def _event_loop_never_blocks() -> AsyncIterator[None]:
    async with no_blocking_calls():
        yield


def tcattrs(port: AsyncSerial) -> list[Any]:
    return termios.tcgetattr(port.fileno())


def termios2_speeds(fd: int) -> tuple[int, int]:
    buf = bytearray(_termios._TERMIOS2.size)
    fcntl.ioctl(fd, _termios.TCGETS2, buf)
    fields = _termios._TERMIOS2.unpack(buf)
    return fields[-2], fields[-1]


async def test_reconfigure_keeps_buffered_bytes_both_ways_and_vmin(
    pair: tuple[AsyncSerial, PtyDevice],
) -> None:
    port, device = pair
    await device.send_all(b"unread input")
    with trio.fail_after(5):
        await trio.lowlevel.wait_readable(port.fileno())
    await port.send_all(b"unread output")
    modem = FakeModem().attach(port)

    await port.reconfigure(baudrate=9600, stopbits=2, xonxoff=True, rtscts=True)

    assert port.settings.framing == "9600 8N2"
    assert get_vmin_vtime(port.fileno()) == (1, 0)
    assert port.in_waiting == len(b"unread input")
    assert await port.receive_some() == b"unread input"
    assert await device.receive_some() == b"unread output"
    # No flush, no drain, no modem-line request (DTR/RTS untouched).
    assert modem.calls == {termios.FIONREAD: 1}
    assert modem.events == []


async def test_flags_reach_the_kernel_and_come_back_off(
    pair: tuple[AsyncSerial, PtyDevice],
) -> None:
    port, _ = pair
    await port.reconfigure(xonxoff=True, rtscts=True, stopbits=StopBits.TWO)
    iflag, _, cflag, *_ = tcattrs(port)
    assert iflag & termios.IXON
    assert iflag & termios.IXOFF
    assert cflag & termios.CRTSCTS
    assert cflag & termios.CSTOPB
    await port.reconfigure(xonxoff=False, rtscts=False, stopbits=1)
    iflag, _, cflag, *_ = tcattrs(port)
    assert not iflag & (termios.IXON | termios.IXOFF)
    assert not cflag & (termios.CRTSCTS | termios.CSTOPB)


async def test_custom_rate_reads_back_through_termios2(
    pair: tuple[AsyncSerial, PtyDevice],
) -> None:
    if not _termios.termios2_supported():
        pytest.skip("termios2 ioctl numbers unknown on this architecture")
    port, device = pair
    await port.reconfigure(baudrate=250000)
    assert termios2_speeds(port.fileno()) == (250000, 250000)
    assert get_baudrate(port.fileno()) == 250000
    assert get_vmin_vtime(port.fileno()) == (1, 0)  # VMIN rides in the same ioctl
    await port.reconfigure(baudrate=115200)  # and back: the custom input rate goes too
    assert termios2_speeds(port.fileno()) == (115200, 115200)
    assert tcattrs(port)[4:6] == [termios.B115200, termios.B115200]
    await port.reconfigure(baudrate=1_000_001, xonxoff=True)
    assert termios2_speeds(port.fileno()) == (1_000_001, 1_000_001)
    assert tcattrs(port)[0] & termios.IXON
    # Data still flows after all of that.
    await device.send_all(b"ok")
    assert await port.receive_some() == b"ok"


async def test_opening_at_a_custom_rate() -> None:
    if not _termios.termios2_supported():
        pytest.skip("termios2 ioctl numbers unknown on this architecture")
    port, device = await open_pty_pair(baudrate=31250)  # MIDI
    async with port, device:
        assert termios2_speeds(port.fileno()) == (31250, 31250)


async def test_framing_bits_we_build() -> None:
    # A pty resets CS7 and parity, so check what we ask the kernel for.
    current = [0, 0, termios.CS8, 0, termios.B9600, termios.B9600, [b"\0"] * 32]
    for parity, on, odd in [
        (Parity.EVEN, True, False),
        (Parity.ODD, True, True),
        (Parity.NONE, False, False),
    ]:
        built, custom = _termios.build_attrs(
            current, SerialSettings(bytesize=7, parity=parity, baudrate=9600)
        )
        cflag = built[2]
        assert not custom
        assert cflag & termios.CSIZE == termios.CS7
        assert bool(cflag & termios.PARENB) is on
        assert bool(cflag & termios.PARODD) is odd


async def test_a_rejected_value_changes_nothing(pair: tuple[AsyncSerial, PtyDevice]) -> None:
    port, _ = pair
    before, attrs_before = port.settings, tcattrs(port)
    with pytest.raises(ValueError, match="bytesize must be 5, 6, 7 or 8, got 9"):
        await port.reconfigure(baudrate=9600, bytesize=9)
    with pytest.raises(TypeError, match=r"unknown serial setting.*baud;"):
        await port.reconfigure(baud=9600)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="baudrate must be between 1 and"):
        await port.reconfigure(baudrate=0)
    assert port.settings == before
    assert tcattrs(port) == attrs_before


@pytest.mark.parametrize(
    "change",
    [
        {"parity": "E"},
        {"bytesize": 7},
        {"baudrate": 9600, "parity": "O", "bytesize": 7},
        {"baudrate": 250000, "parity": "E", "stopbits": 2},  # through termios2
    ],
)
async def test_a_pty_takes_parity_and_data_bits_as_asked_without_applying_them(
    pair: tuple[AsyncSerial, PtyDevice], change: dict[str, Any]
) -> None:
    # A pty has no wire for parity or data bits to shape, and its driver takes
    # only 8N: code written for an 8E1 device must run against a simulated
    # one. What a pty does keep (rate, stop bits) is applied as on a UART.
    port, device = pair
    await port.reconfigure(**change)
    expected = SerialSettings().replace(**change)
    assert port.settings == expected
    cflag = tcattrs(port)[2]
    assert cflag & termios.CSIZE == termios.CS8
    assert not cflag & termios.PARENB
    assert bool(cflag & termios.CSTOPB) is (expected.stopbits is not StopBits.ONE)
    assert get_baudrate(port.fileno()) == expected.baudrate
    await device.send_all(b"\xffbytes pass as they are")
    assert await port.receive_some() == b"\xffbytes pass as they are"


async def test_a_pty_keeps_reporting_the_framing_across_later_changes(
    pair: tuple[AsyncSerial, PtyDevice],
) -> None:
    # The parity a pty took "as asked" is part of the settings every later
    # change starts from: changing the rate alone keeps reporting it, and
    # going back to 8N1 is a change like any other.
    port, _ = pair
    await port.reconfigure(parity="E", bytesize=7)
    await port.reconfigure(baudrate=9600)
    assert port.settings.framing == "9600 7E1"
    assert get_baudrate(port.fileno()) == 9600
    await port.reconfigure(stopbits=2)
    assert port.settings.framing == "9600 7E2"
    assert tcattrs(port)[2] & termios.CSTOPB
    await port.reconfigure(parity="N", bytesize=8)
    assert port.settings.framing == "9600 8N2"
    assert tcattrs(port)[2] & termios.CSIZE == termios.CS8


# Run with a pty as its controlling terminal: /dev/tty is that pty, but its
# own device number (5, 0) is not a pty slave's.
_OPEN_DEV_TTY = """
import os, sys, trio, trioserial
os.setsid()
os.close(os.open(sys.argv[1], os.O_RDWR))  # the pty becomes our controlling terminal
async def main():
    async with await trioserial.open_serial_port("/dev/tty", parity="E") as port:
        print(port.settings.framing)
trio.run(main)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux pty numbering")
async def test_a_pty_opened_as_dev_tty_is_still_a_pty() -> None:
    master, slave = os.openpty()
    try:
        result = await trio.run_process(
            [sys.executable, "-c", _OPEN_DEV_TTY, os.ttyname(slave)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    finally:
        os.close(master)
        os.close(slave)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"115200 8E1\n"


async def test_opening_a_pty_at_8e1() -> None:
    port, device = await open_pty_pair(baudrate=19200, parity="E")
    async with port, device:
        assert port.settings.framing == "19200 8E1"
        assert not tcattrs(port)[2] & termios.PARENB


@pytest.mark.parametrize("same_rate", [True, False])
async def test_a_part_the_driver_leaves_out_is_an_error_and_changes_nothing(
    same_rate: bool,
) -> None:
    # The mechanism under the pty exception above, on a pty asked directly:
    # at the same rate this kernel refuses parity (EINVAL); with a new rate it
    # takes the rate and drops the parity, which the read-back must catch and
    # undo (a UART without CMSPAR does the same to mark/space parity).
    master, slave = os.openpty()
    try:
        current = SerialSettings(baudrate=115200)
        _termios.apply(slave, current)
        before = termios.tcgetattr(slave)
        asked = current.replace(parity="E", baudrate=115200 if same_rate else 9600)
        if same_rate:
            with pytest.raises(termios.error):
                _termios.apply(slave, asked)
        else:
            with pytest.raises(_termios.NotTakenError) as info:
                _termios.apply(slave, asked)
            assert info.value.parts == ["parity"]
            assert info.value.actual == "8N1"
            assert str(info.value) == "the driver did not take the parity (it set 8N1)"
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.parametrize("rate_before", [115200, 250000])
async def test_a_part_left_out_puts_back_a_custom_rate_too(rate_before: int) -> None:
    # apply() reads the termios2 block only when it may need it (a custom rate
    # asked for, or one in force to put back): the undo after a left-out part
    # must still restore a custom rate exactly, and a standard one without it.
    master, slave = os.openpty()
    try:
        current = SerialSettings(baudrate=rate_before)
        _termios.apply(slave, current)
        before = termios.tcgetattr(slave)
        with pytest.raises(_termios.NotTakenError):
            _termios.apply(slave, current.replace(parity="E", baudrate=9600))
        assert get_baudrate(slave) == rate_before
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(slave)
        os.close(master)


async def test_describe_framing() -> None:
    cs7, parenb, parodd = termios.CS7, termios.PARENB, termios.PARODD
    assert _termios.describe_framing(0, termios.CS8) == "8N1"
    assert _termios.describe_framing(0, cs7 | parenb | termios.CSTOPB) == "7E2"
    assert _termios.describe_framing(0, termios.CS8 | parenb | parodd) == "8O1"
    mark = termios.CS8 | parenb | parodd | _termios.CMSPAR
    assert _termios.describe_framing(termios.IXON, mark | termios.CRTSCTS) == ("8M1 rtscts xonxoff")
    assert _termios.describe_framing(0, termios.CS5 | parenb | _termios.CMSPAR) == "5S1"


async def test_taking_the_lock_fails_cleanly_when_someone_holds_it() -> None:
    port, device = await open_pty_pair(exclusive=False)
    async with port, device:
        other = os.open(port.port, os.O_RDWR | os.O_NOCTTY)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            attrs_before = tcattrs(port)
            with pytest.raises(PortBusyError, match=f"cannot lock {port.port!r}: port is busy"):
                await port.reconfigure(exclusive=True, baudrate=9600)
            assert port.settings.exclusive is False
            assert port.settings.baudrate == 115200
            assert tcattrs(port) == attrs_before
        finally:
            os.close(other)
        await port.reconfigure(exclusive=True)
        assert port.settings.exclusive is True
        await port.reconfigure(exclusive=False)
        again = os.open(port.port, os.O_RDWR | os.O_NOCTTY)
        try:
            fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: free for others
        finally:
            os.close(again)


async def test_an_unchanged_setting_is_not_reapplied(
    pair: tuple[AsyncSerial, PtyDevice], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = pair
    applied: list[SerialSettings] = []
    real_apply = _termios.apply

    def spy(fd: int, settings: SerialSettings) -> None:
        applied.append(settings)
        real_apply(fd, settings)

    monkeypatch.setattr(_termios, "apply", spy)
    await port.reconfigure(baudrate=115200)  # what it already is
    await port.reconfigure(exclusive=False)  # only the lock, not the line
    assert applied == []
    await port.reconfigure(baudrate=57600)
    assert [s.baudrate for s in applied] == [57600]


async def test_cancelled_before_it_starts_changes_nothing(
    pair: tuple[AsyncSerial, PtyDevice],
) -> None:
    port, _ = pair
    attrs_before = tcattrs(port)
    with trio.CancelScope() as scope:
        scope.cancel()
        await port.reconfigure(baudrate=9600)
    assert scope.cancelled_caught
    assert port.settings.baudrate == 115200
    assert tcattrs(port) == attrs_before


async def test_reconfigure_after_close(pair: tuple[AsyncSerial, PtyDevice]) -> None:
    port, _ = pair
    await port.aclose()
    with pytest.raises(trio.ClosedResourceError, match="serial port was already closed"):
        await port.reconfigure(baudrate=9600)

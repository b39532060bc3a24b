"""reconfigure() on a pty: termios changes a pty really keeps, read back from the kernel.

A pty keeps the rate (including termios2 custom rates), stop bits, IXON/IXOFF,
CRTSCTS, VMIN/VTIME and its buffered bytes, so all of that is checked on the
real thing. (It refuses or drops CS7 and parity, so those are checked on
the attribute list we build, and the refusal itself is tested: what a pty
drops is reported, not pretended.) DTR/RTS cannot be seen on a pty: the
``ioctl`` seam shows that reconfigure sends no modem-line or flush request.
"""

from __future__ import annotations

import fcntl
import os
import termios
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from noblock import no_blocking_calls

import trioserial
from trioserial import (
    AsyncSerial,
    Parity,
    PortBusyError,
    SerialSettings,
    StopBits,
    UnsupportedOperationError,
    _termios,
)
from trioserial.testing import FakeModem, PtyDevice, open_pty_pair


@pytest.fixture(autouse=True)
async def _event_loop_never_blocks() -> AsyncIterator[None]:
    async with no_blocking_calls():
        yield


@pytest.fixture
async def pair() -> AsyncIterator[tuple[AsyncSerial, PtyDevice]]:
    port, device = await open_pty_pair()
    async with port, device:
        yield port, device


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
    assert _termios.get_vmin_vtime(port.fileno()) == (1, 0)
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
    assert _termios.get_baudrate(port.fileno()) == 250000
    assert _termios.get_vmin_vtime(port.fileno()) == (1, 0)  # VMIN rides in the same ioctl
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
        await port.reconfigure(baud=9600)
    with pytest.raises(ValueError, match="baudrate must be between 1 and"):
        await port.reconfigure(baudrate=0)
    assert port.settings == before
    assert tcattrs(port) == attrs_before


@pytest.mark.parametrize(
    ("change", "parts"),
    [
        # The same rate: this kernel refuses the request (EINVAL).
        ({"parity": "E"}, None),
        ({"bytesize": 7}, None),
        # With a new rate the kernel takes the rate and quietly drops the
        # parity: read back, reported, and the old rate put back.
        ({"baudrate": 9600, "parity": "E"}, "parity"),
        ({"baudrate": 250000, "parity": "O"}, "parity"),  # termios2, restored too
    ],
)
async def test_what_a_pty_cannot_do_is_an_error_and_changes_nothing(
    pair: tuple[AsyncSerial, PtyDevice], change: dict[str, Any], parts: str | None
) -> None:
    port, device = pair
    before, attrs_before = port.settings, tcattrs(port)
    speeds_before = termios2_speeds(port.fileno()) if _termios.termios2_supported() else None
    with pytest.raises(trioserial.SerialPortError) as info:
        await port.reconfigure(**change)
    message = str(info.value)
    assert f"cannot configure {device.path!r}" in message
    assert "(a pty has no parity and only 8 data bits)" in message
    if parts is not None:  # the kernel said yes, and did something else
        assert isinstance(info.value, UnsupportedOperationError)
        assert f"the driver did not take the {parts} (it set 8N1)" in message
        assert "the previous settings are still in force" in message
    assert port.settings == before
    assert tcattrs(port) == attrs_before
    if speeds_before is not None:
        assert termios2_speeds(port.fileno()) == speeds_before
    await device.send_all(b"still fine")
    assert await port.receive_some() == b"still fine"


async def test_opening_a_pty_with_parity_fails_and_leaks_nothing(no_fd_leaks: None) -> None:
    device = await open_pty_pair()
    port, pty = device
    async with port, pty:
        with pytest.raises(trioserial.SerialPortError, match="a pty has no parity"):
            await trioserial.open_serial_port(pty.path, parity="E", exclusive=False)


async def test_rtscts_the_driver_forces_on_is_in_force_not_an_error(
    pair: tuple[AsyncSerial, PtyDevice],
) -> None:
    # Some drivers turn RTS/CTS on by themselves because the device needs it
    # (ftdi_sio's force_rtscts, for the HE TIRA-1): opening such a device with
    # the default rtscts=False must work and say what is in force. A pty never
    # does this, so the read-back is given what such a driver reports.
    port, _ = pair
    current = tcattrs(port)
    settings = SerialSettings(exclusive=False)
    asked, _ = _termios.build_attrs(current, settings)
    forced = list(asked)
    forced[2] = int(asked[2]) | termios.CRTSCTS
    assert _termios._not_taken(asked, forced) == []
    in_force, parts = _termios.settings_in_force(asked, forced, settings)
    assert parts == []
    assert in_force == settings.replace(rtscts=True)
    # Asked for and left out is still an error, as is any other part changed.
    wanted = settings.replace(rtscts=True)
    asked, _ = _termios.build_attrs(current, wanted)
    dropped = list(asked)
    dropped[2] = int(asked[2]) & ~termios.CRTSCTS
    assert _termios.settings_in_force(asked, dropped, wanted) == (wanted, ["rtscts flow control"])
    forced_8n2 = list(forced)
    forced_8n2[2] = int(forced[2]) | termios.CSTOPB
    _, parts = _termios.settings_in_force(asked, forced_8n2, settings)
    assert parts == ["stop bits"]


async def test_settings_report_rtscts_read_back_from_the_pty(
    pair: tuple[AsyncSerial, PtyDevice],
) -> None:
    port, _ = pair  # a pty keeps CRTSCTS either way: nothing forced, nothing left out
    await port.reconfigure(rtscts=True)
    assert port.settings.rtscts
    assert tcattrs(port)[2] & termios.CRTSCTS
    await port.reconfigure(rtscts=False)
    assert not port.settings.rtscts
    assert not tcattrs(port)[2] & termios.CRTSCTS


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

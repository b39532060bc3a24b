"""Leaving ``PySerial.connect()`` lets output already sent go out, as ``aclose`` does.

A pty has no output queue (``TIOCOUTQ`` is always 0 on it), so the queue a
UART would report is played through the port's ioctl seam; the fd, the open
and every other ioctl are the pty's own.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trioserial import _driver, _termios
from trioserial._driver import PySerial
from trioserial._port import TtyPort
from trioserial._termios import INT, os_ioctl


class UartQueue:
    """An output queue of *queued* bytes that a UART reports until it drains."""

    def __init__(self) -> None:
        self.queued = 0
        self.discarded = False

    def ioctl(self, fd: int, request: int, arg: int | bytes) -> int | bytes:
        if request == _termios.TIOCOUTQ:
            return INT.pack(self.queued)
        if request == _termios.TCFLSH and arg == _termios.TCOFLUSH:
            self.discarded = True
            self.queued = 0
        return os_ioctl(fd, request, arg)


@pytest.fixture
def uart(monkeypatch: pytest.MonkeyPatch) -> UartQueue:
    queue = UartQueue()
    monkeypatch.setattr(
        _driver,
        "open_core",
        lambda url, settings, options: TtyPort.open(url, settings, options, ioctl=queue.ioctl),
    )
    return queue


async def test_leaving_connect_waits_for_queued_output(
    pty_path: str, uart: UartQueue, autojump_clock: trio.testing.MockClock
) -> None:
    driver = PySerial(pty_path)

    async def transmit() -> None:
        await trio.sleep(0.05)  # autojump clock: virtual time; the UART sends it meanwhile
        uart.queued = 0

    async with trio.open_nursery() as nursery, driver.connect() as stream:
        await stream.send_all(b"reboot\n")
        uart.queued = 7
        nursery.start_soon(transmit)
    assert not uart.discarded
    assert uart.queued == 0


async def test_leaving_connect_when_cancelled_still_closes(
    pty_path: str, uart: UartQueue, autojump_clock: trio.testing.MockClock
) -> None:
    driver = PySerial(pty_path)
    with trio.CancelScope() as scope:
        async with driver.connect() as stream:
            await stream.send_all(b"reboot\n")
            uart.queued = 7  # and it never drains
            scope.cancel()
    assert stream.fileno() == -1
    assert uart.discarded  # abortive, as a cancelled aclose is


async def test_leaving_connect_gives_up_on_a_held_line(
    pty_path: str, uart: UartQueue, autojump_clock: trio.testing.MockClock
) -> None:
    driver = PySerial(pty_path)
    async with driver.connect() as stream:
        await stream.send_all(b"x")
        uart.queued = 1  # flow control holds it forever
    assert stream.fileno() == -1
    assert uart.discarded  # after aclose's bound (at least a second, on the mock clock)


async def test_closing_the_supervised_port_from_outside_is_a_disconnect(
    pty_path: str, autojump_clock: trio.testing.MockClock
) -> None:
    """``port.serial`` is the live connection, for the control surface; a user
    who closes it (to force a reopen, say) must not crash the supervisor."""
    driver = PySerial(pty_path)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(driver.run)
        assert port.serial is not None
        port.serial.close()
        await port.connected.wait_value(False)
        await port.connected.wait_value(True)  # reopened after the backoff
        assert port.connect_count == 2
        assert port.last_error.value is not None
        driver.close()

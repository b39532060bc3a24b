"""The async control surface: send_break, wait_drained, wait_modem_change.

Timing runs on Trio's autojump clock through the ``ioctl`` seam with
:class:`trioserial.testing.FakeModem`: a pty has no modem lines, no transmit
queue and ignores breaks, so what a pty can show (ENOTTY, instant drain,
accepted break) is tested on the pty itself. Every test here also runs under
the blocking-call detector: no control operation may block the event loop.
"""

from __future__ import annotations

import math
import termios
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
from noblock import no_blocking_calls

from trioserial import AsyncSerial, ModemLines, UnsupportedOperationError
from trioserial.testing import FakeModem, PtyDevice


@pytest.fixture(autouse=True)
async def _event_loop_never_blocks() -> AsyncIterator[None]:
    async with no_blocking_calls():
        yield


@pytest.fixture
async def port(pair: tuple[AsyncSerial, PtyDevice]) -> AsyncSerial:
    return pair[0]


@pytest.fixture
async def modem(port: AsyncSerial) -> FakeModem:
    return FakeModem(clock=trio.current_time).attach(port)


def timeline(modem: FakeModem, start: float) -> list[tuple[float, str, object]]:
    return [(round(t - start, 6), name, value) for t, name, value in modem.events]


# ------------------------------------------------------------------ send_break


async def test_send_break_holds_the_line_for_its_duration(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    start = trio.current_time()
    await port.send_break(0.3)
    assert timeline(modem, start) == [(0, "break", True), (0.3, "break", False)]
    assert port.break_condition is False
    await port.send_break()
    assert modem.events[-1][0] - modem.events[-2][0] == pytest.approx(0.25)


async def test_cancelled_send_break_always_ends_the_break(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    start = trio.current_time()
    with trio.move_on_after(0.1) as scope:
        await port.send_break(10)
    assert scope.cancelled_caught
    assert timeline(modem, start) == [(0, "break", True), (0.1, "break", False)]
    assert modem.break_condition is False
    assert port.break_condition is False


async def test_send_break_after_queued_output_like_tcsendbreak(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    modem.out_queue = 1000
    start = trio.current_time()

    async def transmit() -> None:
        await trio.sleep(0.5)  # autojump clock: virtual time
        modem.out_queue = 0

    async with trio.open_nursery() as nursery:
        nursery.start_soon(transmit)
        await port.send_break(0.1)
    (t_on, _, on), (t_off, _, off) = modem.events
    assert (on, off) == (True, False)
    assert 0.5 <= t_on - start <= 0.6  # after the queue drained, within one poll
    assert t_off - t_on == pytest.approx(0.1)


async def test_cancel_while_draining_sends_no_break(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    modem.out_queue = 10
    with trio.move_on_after(1):
        await port.send_break()
    assert modem.events == []
    assert modem.out_queue == 10  # nothing discarded


async def test_closing_the_port_ends_send_break_at_once(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    start = trio.current_time()

    async def close_soon() -> None:
        await trio.sleep(0.05)  # autojump clock: virtual time
        await port.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(close_soon)
        with pytest.raises(trio.ClosedResourceError):
            await port.send_break(5)
    assert trio.current_time() - start == pytest.approx(0.05)
    assert modem.events[0][1:] == ("break", True)


async def test_one_break_at_a_time(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(port.send_break, 1)
        await trio.sleep(0.5)  # autojump clock: virtual time
        with pytest.raises(trio.BusyResourceError, match="another task is sending a break"):
            await port.send_break(1)
    assert [v for _, n, v in modem.events] == [True, False]


async def test_send_break_on_a_pty_is_accepted(pair: tuple[AsyncSerial, PtyDevice]) -> None:
    # A pty takes TIOCSBRK/TIOCCBRK and does nothing: the real ioctls run.
    port, device = pair
    await port.send_break(0.001)
    assert port.break_condition is False
    await port.send_all(b"ok")
    assert await device.receive_some() == b"ok"


@pytest.mark.parametrize(
    ("duration", "error", "message"),
    [
        (0, ValueError, "duration must be a finite number of seconds > 0, got 0"),
        (-1, ValueError, "got -1"),
        (math.nan, ValueError, "got nan"),
        (math.inf, ValueError, "got inf"),
        ("0.25", TypeError, "duration must be a number of seconds > 0, got '0.25'"),
        (True, TypeError, "got True"),
    ],
)
async def test_send_break_rejects_bad_durations(
    port: AsyncSerial, modem: FakeModem, duration: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await port.send_break(duration)  # type: ignore[arg-type]
    assert modem.events == []


# ---------------------------------------------------------------- wait_drained


async def test_wait_drained_returns_when_the_queue_is_empty(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    await port.reconfigure(baudrate=9600)  # about 1 ms per character
    modem.out_queue = 2000  # about 2 s of output
    start = trio.current_time()

    async def transmit() -> None:
        while modem.out_queue:
            await trio.sleep(0.00104)  # autojump clock: virtual time
            modem.out_queue -= 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(transmit)
        await port.wait_drained()
        assert modem.out_queue == 0
    assert trio.current_time() - start < 2.2
    # Sleeping for the queue's expected time keeps polls few: not one per ms.
    assert modem.calls[termios.TIOCOUTQ] < 60


async def test_wait_drained_waits_for_the_uart_fifo(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    modem.fifo = 16
    start = trio.current_time()

    async def shift_out() -> None:
        await trio.sleep(0.2)  # autojump clock: virtual time
        modem.fifo = 0

    async with trio.open_nursery() as nursery:
        nursery.start_soon(shift_out)
        await port.wait_drained()
    assert 0.2 <= trio.current_time() - start <= 0.21


async def test_without_lsr_the_driver_queue_is_all_we_know(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial
) -> None:
    modem = FakeModem(unsupported={termios.TIOCSERGETLSR}).attach(port)
    modem.fifo = 16  # invisible: USB adapters look like this
    with trio.fail_after(0.001):
        await port.wait_drained()
    await port.wait_drained()
    assert modem.calls[termios.TIOCSERGETLSR] == 1  # asked once, then remembered


async def test_cancelled_wait_drained_discards_nothing(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    modem.out_queue = 500
    with trio.move_on_after(0.3) as scope:
        await port.wait_drained()
    assert scope.cancelled_caught
    assert modem.out_queue == 500
    assert modem.events == []


async def test_closing_wakes_wait_drained(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    modem.out_queue = 10**6
    async with trio.open_nursery() as nursery:
        nursery.start_soon(port.aclose)
        with pytest.raises(trio.ClosedResourceError):
            await port.wait_drained()
    # close() discarded the stuck output instead of waiting for it
    assert modem.out_queue == 0


async def test_wait_drained_on_a_pty_returns_at_once(pair: tuple[AsyncSerial, PtyDevice]) -> None:
    port, device = pair
    await port.send_all(b"x" * 100)
    with trio.fail_after(5):
        await port.wait_drained()
    assert await device.receive_some() == b"x" * 100


async def test_wait_drained_is_a_checkpoint(port: AsyncSerial) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await port.wait_drained()


# ----------------------------------------------------------- wait_modem_change


async def test_wait_modem_change_returns_the_new_lines(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial
) -> None:
    modem = FakeModem(loopback=False).attach(port)
    start = trio.current_time()

    async def ring() -> None:
        await trio.sleep(1)  # autojump clock: virtual time
        modem.set_inputs(ri=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ring)
        lines = await port.wait_modem_change(poll_interval=0.05)
    assert lines == ModemLines(ri=True)
    assert 1 <= trio.current_time() - start <= 1.05


async def test_wait_modem_change_watches_only_the_named_lines(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial
) -> None:
    modem = FakeModem(loopback=False).attach(port)

    async def device() -> None:
        await trio.sleep(1)  # autojump clock: virtual time
        modem.set_inputs(ri=True, cd=True)
        modem.pulse("dsr")
        await trio.sleep(1)  # autojump clock: virtual time
        modem.set_inputs(cts=True)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(device)
        lines = await port.wait_modem_change("cts")
    assert lines == ModemLines(cts=True, ri=True, cd=True)
    assert 2 <= trio.current_time() - start <= 2.02


async def test_a_pulse_between_polls_is_seen_through_the_counters(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial
) -> None:
    modem = FakeModem(loopback=False).attach(port)

    async def ring_pulse() -> None:
        await trio.sleep(0.5)  # autojump clock: virtual time
        modem.pulse("ri")  # up and down again, faster than any poll

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ring_pulse)
        with trio.fail_after(1):
            lines = await port.wait_modem_change("ri", poll_interval=0.1)
    assert lines == ModemLines()  # the level after the pulse


async def test_without_counters_only_levels_count(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial
) -> None:
    modem = FakeModem(loopback=False, unsupported={termios.TIOCGICOUNT}).attach(port)

    async def device() -> None:
        await trio.sleep(0.5)  # autojump clock: virtual time
        modem.pulse("ri")  # missed: documented
        await trio.sleep(0.5)  # autojump clock: virtual time
        modem.set_inputs(ri=True)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(device)
        lines = await port.wait_modem_change("ri", poll_interval=0.1)
    assert lines.ri is True
    assert 1 <= trio.current_time() - start <= 1.1
    assert modem.calls[termios.TIOCGICOUNT] == 1  # asked once, then remembered


async def test_our_own_dtr_seen_through_a_loopback_plug(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    async def toggle() -> None:
        await trio.sleep(0.2)  # autojump clock: virtual time
        port.dtr = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(toggle)
        lines = await port.wait_modem_change("dsr")
    assert (lines.dtr, lines.dsr) == (True, True)


async def test_cancelled_wait_modem_change_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    with trio.move_on_after(1) as scope:
        await port.wait_modem_change()
    assert scope.cancelled_caught
    assert modem.events == []
    modem.loopback = False
    modem.set_inputs(cd=True)  # before the next call: its starting level
    with trio.move_on_after(1) as scope:
        await port.wait_modem_change("cd")
    assert scope.cancelled_caught


async def test_closing_wakes_wait_modem_change(
    autojump_clock: trio.testing.MockClock, port: AsyncSerial, modem: FakeModem
) -> None:
    async def close_soon() -> None:
        await trio.sleep(0.3)  # autojump clock: virtual time
        port.close()

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(close_soon)
        with pytest.raises(trio.ClosedResourceError):
            await port.wait_modem_change(poll_interval=100)
    assert trio.current_time() - start == pytest.approx(0.3)


async def test_wait_modem_change_on_a_pty_says_no_modem_lines(port: AsyncSerial) -> None:
    with pytest.raises(UnsupportedOperationError, match=r"TIOCMGET.*ENOTTY"):
        await port.wait_modem_change()


@pytest.mark.parametrize(
    ("lines", "interval", "error", "message"),
    [
        (("dtr",), 0.01, ValueError, "lines must be input line names .* got 'dtr'"),
        (("cts", "CTS"), 0.01, ValueError, "got 'CTS'"),
        ((), 0, ValueError, "poll_interval must be a finite number of seconds > 0, got 0"),
        ((), -0.5, ValueError, "got -0.5"),
        ((), math.inf, ValueError, "got inf"),
        ((), "fast", TypeError, "poll_interval must be a number of seconds > 0, got 'fast'"),
    ],
)
async def test_wait_modem_change_rejects_bad_arguments(
    port: AsyncSerial,
    modem: FakeModem,
    lines: tuple[str, ...],
    interval: object,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        await port.wait_modem_change(*lines, poll_interval=interval)  # type: ignore[arg-type]
    assert modem.calls == {}


@pytest.mark.parametrize("method", ["wait_drained", "send_break", "wait_modem_change"])
async def test_async_control_after_close(port: AsyncSerial, method: str) -> None:
    await port.aclose()
    with pytest.raises(trio.ClosedResourceError, match="serial port was already closed"):
        await getattr(port, method)()

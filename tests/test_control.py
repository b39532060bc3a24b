"""The sync control surface: modem lines, break, queues, discards.

What a pty can show is tested on a pty: FIONREAD, TCFLSH, break (accepted and
ignored), and the ENOTTY answer to every modem-line ioctl. A pty has no modem
lines and no transmit queue, so the logic above those ioctls is tested through
the port core's one ``ioctl`` seam with :class:`trioserial.testing.FakeModem`.
"""

from __future__ import annotations

import re
import termios
from collections.abc import AsyncIterator, Callable

import pytest
import trio
import trio.testing
from noblock import no_blocking_calls

import trioserial
from trioserial import AsyncSerial, ModemLines, UnsupportedOperationError
from trioserial._control import character_time, drain_delay
from trioserial.testing import FakeModem, PtyDevice, open_pty_pair


@pytest.fixture(autouse=True)
async def _event_loop_never_blocks() -> AsyncIterator[None]:
    async with no_blocking_calls():
        yield


@pytest.fixture
async def modem(pair: tuple[AsyncSerial, PtyDevice]) -> FakeModem:
    return FakeModem(clock=trio.current_time).attach(pair[0])


async def wait_for_input(port: AsyncSerial, n: int) -> None:
    """Wait until the port has *n* unread bytes (a pty delivers small writes at once)."""
    with trio.fail_after(5):
        await trio.lowlevel.wait_readable(port.fileno())
    assert port.in_waiting == n


# ------------------------------------------------------------------ on a pty

MODEM_OPERATIONS: dict[str, tuple[Callable[[AsyncSerial], object], str]] = {
    "modem_lines": (lambda p: p.modem_lines(), "reading the modem lines (TIOCMGET)"),
    "cts": (lambda p: p.cts, "reading the modem lines"),
    "dsr": (lambda p: p.dsr, "reading the modem lines"),
    "ri": (lambda p: p.ri, "reading the modem lines"),
    "cd": (lambda p: p.cd, "reading the modem lines"),
    "dtr": (lambda p: p.dtr, "reading the modem lines"),
    "rts": (lambda p: p.rts, "reading the modem lines"),
    "dtr=True": (lambda p: setattr(p, "dtr", True), "setting DTR on (TIOCMBIS)"),
    "dtr=False": (lambda p: setattr(p, "dtr", False), "setting DTR off (TIOCMBIC)"),
    "rts=True": (lambda p: setattr(p, "rts", True), "setting RTS on (TIOCMBIS)"),
    "rts=False": (lambda p: setattr(p, "rts", False), "setting RTS off (TIOCMBIC)"),
}


@pytest.mark.parametrize("operation", MODEM_OPERATIONS)
async def test_pty_has_no_modem_lines_and_says_so(
    pair: tuple[AsyncSerial, PtyDevice], operation: str
) -> None:
    port, _ = pair
    call, what = MODEM_OPERATIONS[operation]
    with pytest.raises(UnsupportedOperationError) as info:
        call(port)
    message = str(info.value)
    assert repr(port.port) in message
    assert what in message
    assert "ENOTTY" in message
    assert info.value.port == port.port
    assert info.value.errno is not None
    assert not port.closed  # the port goes on working
    await port.send_all(b"still fine")


async def test_pty_counts_and_discards_input(pair: tuple[AsyncSerial, PtyDevice]) -> None:
    port, device = pair
    assert port.in_waiting == 0
    await device.send_all(b"stale")
    await wait_for_input(port, 5)
    port.reset_input_buffer()
    assert port.in_waiting == 0
    await device.send_all(b"fresh")
    assert await port.receive_some() == b"fresh"


async def test_pty_output_queue_and_discard(pair: tuple[AsyncSerial, PtyDevice]) -> None:
    # A pty has no transmit queue: TIOCOUTQ says 0, and TCOFLUSH can only race
    # the kernel worker that moves bytes to the master. So: after the device
    # took the bytes, the queue is empty and a discard loses nothing later.
    port, device = pair
    await port.send_all(b"abc")
    with trio.fail_after(5):
        assert await device.receive_some() == b"abc"
    assert port.out_waiting == 0
    port.reset_output_buffer()
    await port.send_all(b"def")
    with trio.fail_after(5):
        assert await device.receive_some() == b"def"


async def test_pty_accepts_a_break_and_reports_it(pair: tuple[AsyncSerial, PtyDevice]) -> None:
    port, device = pair
    assert port.break_condition is False
    port.break_condition = True
    assert port.break_condition is True
    port.break_condition = False
    assert port.break_condition is False
    await port.send_all(b"after")
    assert await device.receive_some() == b"after"


CONTROL_CALLS: dict[str, Callable[[AsyncSerial], object]] = {
    **{name: call for name, (call, _) in MODEM_OPERATIONS.items()},
    "break_condition": lambda p: p.break_condition,
    "break_condition=True": lambda p: setattr(p, "break_condition", True),
    "in_waiting": lambda p: p.in_waiting,
    "out_waiting": lambda p: p.out_waiting,
    "reset_input_buffer": lambda p: p.reset_input_buffer(),
    "reset_output_buffer": lambda p: p.reset_output_buffer(),
}


@pytest.mark.parametrize("operation", CONTROL_CALLS)
@pytest.mark.parametrize("fake", [False, True], ids=["pty", "fake-modem"])
async def test_control_after_close_raises_closed(operation: str, fake: bool) -> None:
    port, device = await open_pty_pair()
    if fake:
        FakeModem().attach(port)
    await port.aclose()
    await device.aclose()
    with pytest.raises(trio.ClosedResourceError, match="serial port was already closed"):
        CONTROL_CALLS[operation](port)


@pytest.mark.parametrize("name", ["dtr", "rts", "break_condition"])
@pytest.mark.parametrize("value", [1, 0, None, "on"])
async def test_output_lines_take_only_bools(
    pair: tuple[AsyncSerial, PtyDevice], modem: FakeModem, name: str, value: object
) -> None:
    port, _ = pair
    with pytest.raises(
        TypeError, match=f"{name} must be True or False, got {re.escape(repr(value))}"
    ):
        setattr(port, name, value)
    assert modem.events == []


# ------------------------------------------------------ through the seam


async def test_dtr_and_rts_drive_their_own_line_only(
    pair: tuple[AsyncSerial, PtyDevice], modem: FakeModem
) -> None:
    port, _ = pair
    assert port.modem_lines() == ModemLines()
    port.dtr = True
    assert (modem.dtr, modem.rts) == (True, False)
    assert port.modem_lines() == ModemLines(dtr=True, dsr=True)  # looped back to DSR
    port.rts = True
    assert (port.dtr, port.rts, port.dsr, port.cts) == (True, True, True, True)
    port.dtr = False
    assert (modem.dtr, modem.rts) == (False, True)
    assert [(name, value) for _, name, value in modem.events] == [
        ("dtr", True),
        ("rts", True),
        ("dtr", False),
    ]


async def test_input_lines_read_what_the_device_drives(
    pair: tuple[AsyncSerial, PtyDevice],
) -> None:
    port, _ = pair
    modem = FakeModem(loopback=False).attach(port)
    modem.set_inputs(ri=True, cd=True)
    assert (port.cts, port.dsr, port.ri, port.cd) == (False, False, True, True)
    modem.set_inputs(cts=True, ri=False)
    assert port.modem_lines() == ModemLines(cts=True, cd=True)
    port.dtr = True  # no loopback: DSR stays low
    assert port.modem_lines() == ModemLines(cts=True, cd=True, dtr=True)


async def test_break_condition_reaches_the_line(
    pair: tuple[AsyncSerial, PtyDevice], modem: FakeModem
) -> None:
    port, _ = pair
    port.break_condition = True
    assert modem.break_condition is True
    assert port.break_condition is True
    port.break_condition = False
    assert modem.break_condition is False
    assert [(n, v) for _, n, v in modem.events] == [("break", True), ("break", False)]


async def test_out_waiting_and_discarding_output(
    pair: tuple[AsyncSerial, PtyDevice], modem: FakeModem
) -> None:
    port, _ = pair
    modem.out_queue = 300
    assert port.out_waiting == 300
    port.reset_output_buffer()
    assert port.out_waiting == 0
    assert modem.events[-1][1:] == ("discard output", 300)


async def test_close_discards_stuck_output_before_closing(
    pair: tuple[AsyncSerial, PtyDevice], modem: FakeModem
) -> None:
    # A UART whose output cannot drain (flow control stuck) would make close(2)
    # wait up to 30 s in the kernel: a forceful close discards the queue first.
    port, _ = pair
    modem.out_queue = 4096
    await trio.aclose_forcefully(port)
    assert port.closed
    assert modem.out_queue == 0
    assert modem.events[-1][1:] == ("discard output", 4096)
    assert modem.calls[termios.TCFLSH] == 1


async def test_aclose_gives_up_on_a_line_held_by_flow_control(
    pair: tuple[AsyncSerial, PtyDevice], modem: FakeModem, autojump_clock: trio.abc.Clock
) -> None:
    # The queue never drains (CTS held low). A graceful close waits twice what
    # the queue takes at the line rate, at least 1 s, then discards: bounded,
    # like the kernel's closing_wait, and never on the event loop.
    port, _ = pair
    modem.out_queue = 4096
    start = trio.current_time()
    await port.aclose()
    assert port.closed
    assert trio.current_time() - start == pytest.approx(max(1.0, 2 * 4096 * 10 / 115200), rel=0.1)
    assert modem.events[-1][1:] == ("discard output", 4096)


async def test_aclose_lets_queued_output_go_out_first(
    pair: tuple[AsyncSerial, PtyDevice], modem: FakeModem
) -> None:
    port, _ = pair
    modem.out_queue = 4096
    async with trio.open_nursery() as nursery:
        nursery.start_soon(port.aclose)
        await trio.testing.wait_all_tasks_blocked()
        assert not port.closed  # waiting for the queue, not discarding it
        modem.out_queue = 0  # the UART sent it
    assert port.closed
    assert termios.TCFLSH not in modem.calls  # nothing was discarded


@pytest.mark.parametrize(
    ("request_number", "call", "what"),
    [
        (termios.TIOCMGET, lambda p: p.cts, "reading the modem lines (TIOCMGET)"),
        (termios.TIOCMBIS, lambda p: setattr(p, "rts", True), "setting RTS on (TIOCMBIS)"),
        (termios.FIONREAD, lambda p: p.in_waiting, "counting input bytes (TIOCINQ)"),
        (termios.TIOCOUTQ, lambda p: p.out_waiting, "counting output bytes (TIOCOUTQ)"),
        (termios.TCFLSH, lambda p: p.reset_input_buffer(), "discarding input (TCFLSH)"),
    ],
)
async def test_a_driver_without_the_feature_gives_one_error_type(
    pair: tuple[AsyncSerial, PtyDevice],
    request_number: int,
    call: Callable[[AsyncSerial], object],
    what: str,
) -> None:
    port, _ = pair
    FakeModem(unsupported={request_number}).attach(port)
    with pytest.raises(UnsupportedOperationError, match=re.escape(what)) as info:
        call(port)
    assert port.port in str(info.value)


async def test_other_os_errors_name_the_port_and_keep_the_errno(
    pair: tuple[AsyncSerial, PtyDevice],
) -> None:
    port, _ = pair

    def unplugged(fd: int, request: int, arg: int | bytes) -> int | bytes:
        raise OSError(5, "Input/output error")

    port._core.ioctl = unplugged  # type: ignore[attr-defined]
    with pytest.raises(
        trioserial.SerialPortError, match=r"reading the modem lines \(TIOCMGET\) failed on "
    ) as info:
        port.modem_lines()
    assert info.value.errno == 5
    assert not isinstance(info.value, UnsupportedOperationError)


# ------------------------------------------- the decisions behind the waits


@pytest.mark.parametrize(
    ("baudrate", "out_queue", "fifo", "expected"),
    [
        (9600, 0, 0, None),  # drained
        (9600, 1, 0, 10 / 9600),  # one 8N1 character
        (9600, 50, 0, 500 / 9600),  # as long as the queue takes
        (9600, 5000, 0, 0.1),  # capped: look again at least every 100 ms
        (921600, 3, 0, 0.001),  # at least 1 ms
        (9600, 0, 16, 10 / 9600),  # queue empty, UART FIFO not: one character more
    ],
)
async def test_drain_delay(
    pair: tuple[AsyncSerial, PtyDevice],
    modem: FakeModem,
    baudrate: int,
    out_queue: int,
    fifo: int,
    expected: float | None,
) -> None:
    port, _ = pair
    await port.reconfigure(baudrate=baudrate)
    modem.out_queue, modem.fifo = out_queue, fifo
    delay = drain_delay(port._core)
    assert delay == (None if expected is None else pytest.approx(expected))
    modem.out_queue = modem.fifo = 0  # "transmitted", so the fixture's graceful close is quick


async def test_character_time_counts_start_parity_and_stop_bits() -> None:
    # loop://, which keeps any framing: a pty refuses parity and 7 data bits.
    async with await trioserial.open_serial_port(
        "loop://", baudrate=1200, bytesize=7, parity="E", stopbits=2
    ) as port:
        assert character_time(port._core) == pytest.approx(11 / 1200)

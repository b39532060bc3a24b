"""Open-time policy: exclusive, dtr/rts, hupcl, low_latency, rs485.

On a pty: the flock lock (also against a second process), HUPCL in termios,
and the ENOTTY answers for low_latency, RS-485 and DTR/RTS. What a pty cannot
show (the lines, serial_struct flags, the RS-485 struct, TIOCEXCL being
cleared) goes through the port core's ``ioctl`` seam, opening the core
directly as the front ends do in their worker thread.
"""

from __future__ import annotations

import os
import sys
import termios
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from noblock import no_blocking_calls

import trioserial
from trioserial import (
    PortBusyError,
    RS485Settings,
    SerialSettings,
    UnsupportedOperationError,
    _termios,
    open_serial_port,
)
from trioserial._core import PortCore
from trioserial._open import OPENERS, open_core
from trioserial._options import OpenOptions
from trioserial._port import TtyPort
from trioserial.testing import FakeModem


@pytest.fixture(autouse=True)
async def _event_loop_never_blocks() -> AsyncIterator[None]:
    async with no_blocking_calls():
        yield


def hupcl(fd: int) -> bool:
    return bool(termios.tcgetattr(fd)[2] & termios.HUPCL)


# ------------------------------------------------------------------ exclusive


async def test_second_opener_in_this_process_gets_port_busy(pty_path: str) -> None:
    async with await open_serial_port(pty_path):
        with pytest.raises(PortBusyError, match=f"cannot open {pty_path!r}: port is busy") as info:
            await open_serial_port(pty_path)
        assert info.value.port == pty_path
    async with await open_serial_port(pty_path):  # closing released it
        pass


async def test_second_process_gets_port_busy(pty_path: str) -> None:
    script = textwrap.dedent(
        """
        import sys, trio, trioserial
        try:
            trio.run(trioserial.open_serial_port, sys.argv[1])
        except trioserial.PortBusyError as exc:
            print(exc)
            sys.exit(3)
        """
    )
    async with await open_serial_port(pty_path):
        result = await trio.run_process(
            [sys.executable, "-c", script, pty_path], capture_stdout=True, check=False
        )
    assert result.returncode == 3
    assert f"cannot open {pty_path!r}: port is busy" in result.stdout.decode()


async def test_not_exclusive_leaves_the_port_open_to_others(pty_path: str) -> None:
    first = await open_serial_port(pty_path, exclusive=False)
    second = await open_serial_port(pty_path)
    await second.aclose()
    await first.aclose()


async def test_tiocexcl_is_set_on_open_and_cleared_on_close(pty_path: str) -> None:
    # Root ignores TIOCEXCL, so look at the requests: a pty slave outlives our
    # fd while its master is open, and a stale TIOCEXCL would lock everyone
    # but root out of it.
    modem = FakeModem()
    core = TtyPort.open(pty_path, SerialSettings(), ioctl=modem)
    assert modem.calls.get(termios.TIOCEXCL) == 1
    core.close()
    assert modem.calls.get(termios.TIOCNXCL) == 1
    modem = FakeModem()
    TtyPort.open(pty_path, SerialSettings(exclusive=False), ioctl=modem).close()
    assert termios.TIOCEXCL not in modem.calls
    assert termios.TIOCNXCL not in modem.calls


# ------------------------------------------------------------------- hupcl


@pytest.mark.parametrize("preset", [True, False])
async def test_hupcl_is_set_cleared_or_left_alone(pty_path: str, preset: bool) -> None:
    fd = os.open(pty_path, os.O_RDWR | os.O_NOCTTY)
    try:
        _termios.set_hupcl(fd, preset)
        for value, expected in [(None, preset), (False, False), (True, True), (None, True)]:
            async with await open_serial_port(pty_path, hupcl=value) as port:
                assert hupcl(port.fileno()) is expected
                assert hupcl(fd) is expected
    finally:
        os.close(fd)


# ------------------------------------------------- ENOTTY answers of a pty


@pytest.mark.parametrize(
    ("options", "what"),
    [
        ({"low_latency": True}, "setting low_latency=True (TIOCGSERIAL)"),
        ({"low_latency": False}, "setting low_latency=False (TIOCGSERIAL)"),
        ({"rs485": RS485Settings()}, "setting rs485 (TIOCSRS485)"),
        ({"dtr": False}, "setting DTR off (TIOCMBIC)"),
        ({"rts": True}, "setting RTS on (TIOCMBIS)"),
    ],
)
async def test_options_a_pty_cannot_do_fail_the_open_and_close_the_fd(
    pty_path: str, no_fd_leaks: None, options: dict[str, Any], what: str
) -> None:
    with pytest.raises(UnsupportedOperationError) as info:
        await open_serial_port(pty_path, **options)
    assert what in str(info.value)
    assert repr(pty_path) in str(info.value)
    # The lock went with the fd: the port can be opened again at once.
    async with await open_serial_port(pty_path):
        pass


# -------------------------------------------------------- through the seam


async def test_no_options_means_no_line_is_touched(pty_path: str) -> None:
    modem = FakeModem()
    modem.dtr = modem.rts = True
    TtyPort.open(pty_path, SerialSettings(), ioctl=modem).close()
    assert not {termios.TIOCMBIS, termios.TIOCMBIC, termios.TIOCMSET} & set(modem.calls)
    assert (modem.dtr, modem.rts) == (True, True)
    # Nothing was queued, so close discarded nothing either (see test_control for
    # close discarding output that is stuck).
    assert modem.events == []


@pytest.mark.parametrize(("dtr", "rts"), [(False, False), (True, False), (False, True)])
async def test_dtr_and_rts_on_open(pty_path: str, dtr: bool, rts: bool) -> None:
    modem = FakeModem()
    modem.dtr = modem.rts = True  # as Linux leaves them after open()
    core = TtyPort.open(pty_path, SerialSettings(), OpenOptions(dtr=dtr, rts=rts), ioctl=modem)
    try:
        assert (modem.dtr, modem.rts) == (dtr, rts)
    finally:
        core.close()


@pytest.mark.parametrize("value", [True, False])
async def test_low_latency_flips_only_its_flag(pty_path: str, value: bool) -> None:
    modem = FakeModem()
    other_flags = 0x1 | 0x40
    initial = other_flags | (0 if value else _termios.ASYNC_LOW_LATENCY)
    modem.serial_struct = _termios.with_serial_flags(b"\x07" * _termios.SERIAL_STRUCT_SIZE, initial)
    TtyPort.open(pty_path, SerialSettings(), OpenOptions(low_latency=value), ioctl=modem).close()
    assert modem.serial_struct is not None
    flags = _termios.serial_flags(modem.serial_struct)
    assert bool(flags & _termios.ASYNC_LOW_LATENCY) is value
    assert flags & ~_termios.ASYNC_LOW_LATENCY == other_flags
    assert modem.serial_struct[:4] == b"\x07" * 4  # the rest of the struct round-trips


async def test_low_latency_already_set_is_not_written(pty_path: str) -> None:
    modem = FakeModem()
    modem.serial_struct = _termios.with_serial_flags(
        bytes(_termios.SERIAL_STRUCT_SIZE), _termios.ASYNC_LOW_LATENCY
    )
    TtyPort.open(pty_path, SerialSettings(), OpenOptions(low_latency=True), ioctl=modem).close()
    assert _termios.TIOCSSERIAL not in modem.calls


async def test_rs485_is_applied_and_reads_back(pty_path: str) -> None:
    modem = FakeModem()
    modem.rs485 = bytes(32)
    wanted = RS485Settings(
        rts_level_for_tx=False, rts_level_for_rx=True, delay_before_tx=0.002, delay_before_rx=0.1
    )
    core = TtyPort.open(pty_path, SerialSettings(), OpenOptions(rs485=wanted), ioctl=modem)
    try:
        assert modem.rs485 == wanted.to_struct()
        assert core.rs485() == wanted
    finally:
        core.close()


async def test_rs485_struct_layout() -> None:
    data = RS485Settings(loopback=True, terminate_bus=True, delay_before_tx=0.01).to_struct()
    assert len(data) == 32
    flags = int.from_bytes(data[0:4], sys.byteorder)
    assert flags == 1 | 2 | 16 | 32  # ENABLED, RTS_ON_SEND, RX_DURING_TX, TERMINATE_BUS
    assert int.from_bytes(data[4:8], sys.byteorder) == 10  # ms
    assert RS485Settings.from_struct(data) == RS485Settings(
        loopback=True, terminate_bus=True, delay_before_tx=0.01
    )
    assert RS485Settings(enabled=False).to_struct()[0] & 1 == 0


# --------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"dtr": 1}, TypeError, r"dtr must be True, False or None \(leave as is\), got 1"),
        ({"rts": "high"}, TypeError, "rts must be True, False or None .* got 'high'"),
        ({"hupcl": 0}, TypeError, "hupcl must be True, False or None .* got 0"),
        ({"low_latency": "yes"}, TypeError, "low_latency must be True, False or None"),
        ({"rs485": True}, TypeError, "rs485 must be an RS485Settings or None, got True"),
        ({"exclusive": None}, TypeError, "exclusive must be True or False, got None"),
        ({"baudrate": 0}, ValueError, "baudrate must be between 1 and"),
    ],
)
async def test_bad_options_are_rejected_before_any_io(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    # A path that does not exist: getting the TypeError, not "not found",
    # shows that nothing was opened.
    with pytest.raises(error, match=message):
        await open_serial_port("/dev/does-not-exist", **options)


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"delay_before_tx": 0.2}, ValueError, r"delay_before_tx must be between 0 and 0\.1"),
        ({"delay_before_rx": -0.001}, ValueError, "delay_before_rx must be between .* got -0.001"),
        ({"delay_before_tx": float("nan")}, ValueError, "got nan"),
        ({"delay_before_tx": "1ms"}, TypeError, "must be a number of seconds, got '1ms'"),
        ({"enabled": 1}, TypeError, "enabled must be True or False, got 1"),
        ({"loopback": None}, TypeError, "loopback must be True or False, got None"),
    ],
)
async def test_bad_rs485_settings(
    fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RS485Settings(**fields)


async def test_rs485_settings_is_public_and_frozen() -> None:
    settings = trioserial.RS485Settings()
    with pytest.raises(AttributeError):
        settings.enabled = False  # type: ignore[misc]


# ------------------------------------------------- other transports' cores


class RecordingCore(PortCore):
    """A transport with DTR/RTS but no tty: what ``apply_open_options`` falls back to."""

    transport = "recording"

    def __init__(self, url: str, settings: SerialSettings) -> None:
        self.name = url
        self.settings = settings
        self.lines: list[tuple[str, bool]] = []
        self._fd = 10**6  # a number no real fd has; nothing waits on it here

    def fileno(self) -> int:
        return self._fd

    def read_nowait(self, max_bytes: int) -> bytes:
        raise BlockingIOError

    def write_nowait(self, data: memoryview) -> int:
        raise BlockingIOError

    def close(self) -> None:
        self._fd = -1

    def set_dtr(self, value: bool) -> None:
        self.lines.append(("dtr", value))

    def set_rts(self, value: bool) -> None:
        self.lines.append(("rts", value))


@pytest.fixture
def recording_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPENERS, "recording", RecordingCore)


async def test_other_transports_get_dtr_and_rts_through_the_core(recording_scheme: None) -> None:
    core = open_core("recording://x", SerialSettings(), OpenOptions(dtr=False, rts=True))
    assert isinstance(core, RecordingCore)
    assert core.lines == [("dtr", False), ("rts", True)]
    plain = open_core("recording://x", SerialSettings())
    assert isinstance(plain, RecordingCore)
    assert plain.lines == []


@pytest.mark.parametrize(
    "options",
    [OpenOptions(hupcl=False), OpenOptions(low_latency=True), OpenOptions(rs485=RS485Settings())],
)
async def test_tty_only_options_on_other_transports_fail_and_close(
    recording_scheme: None, options: OpenOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[RecordingCore] = []

    def opener(url: str, settings: SerialSettings) -> RecordingCore:
        made.append(RecordingCore(url, settings))
        return made[-1]

    monkeypatch.setitem(OPENERS, "recording", opener)
    with pytest.raises(UnsupportedOperationError, match=r"'recording://x' \(recording\) does not"):
        open_core("recording://x", SerialSettings(), options)
    assert made[0].closed

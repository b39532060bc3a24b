"""PySerial, the driver: configuration, connect(), close(), DTR/RTS and cps.

Everything runs on real ptys (``os.openpty``); the supervised mode, with its
unplug and replug, is in ``test_driver_run.py``. A pty has no modem lines,
so DTR/RTS are checked through the port core's ioctl seam
(:class:`trioserial.testing.FakeModem`), plugged in where the driver opens
the real pty.
"""

from __future__ import annotations

import errno
import os
import termios
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from conftest import GatedOpen

import trioserial
import trioserial._driver
from trioserial import (
    DriverStream,
    NotASerialPortError,
    PortBusyError,
    PortNotFoundError,
    PySerial,
    UnsupportedOperationError,
    UnsupportedURLError,
    open_serial_port,
)
from trioserial._core import PortCore
from trioserial._open import OPENERS, open_core
from trioserial._options import OpenOptions
from trioserial._port import TtyPort
from trioserial._settings import SerialSettings
from trioserial.testing import FakeModem, PtyDevice


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[PortCore]:
    """Every core the driver opens (the real open, on the real pty), in order."""
    opened: list[PortCore] = []

    def counting_open(url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
        core = open_core(url, settings, options)
        opened.append(core)
        return core

    monkeypatch.setattr(trioserial._driver, "open_core", counting_open)
    return opened


async def receive_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await stream.receive_some(n - len(data))
        assert chunk, f"end of stream after {data!r}"
        data += chunk
    return data


def fd_target(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except FileNotFoundError:
        return None


# ------------------------------------------------------------ configuration


def test_defaults_are_jumpstarters(pty_path: str) -> None:
    path = pty_path
    driver = PySerial(path)
    assert driver.url == path
    assert driver.baudrate == 115200
    assert driver.check_present is True
    assert driver.cps is None
    assert driver.disable_hupcl is False
    assert driver.settings == SerialSettings()
    assert path in repr(driver)


def test_serial_settings_are_keywords(pty_path: str) -> None:
    driver = PySerial(Path(pty_path), baudrate=9600, parity="even", stopbits=2, exclusive=False)
    assert driver.url == pty_path
    assert driver.settings == SerialSettings(baudrate=9600, parity="E", stopbits=2, exclusive=False)
    assert driver.baudrate == 9600


def test_fields_cannot_change_after_validation(pty_path: str) -> None:
    driver = PySerial(pty_path)
    with pytest.raises(attrs.exceptions.FrozenAttributeError):
        driver.cps = -5


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"baudrate": "9600"}, TypeError, "baudrate must be an int, got '9600'"),
        ({"baudrate": 0}, ValueError, "baudrate must be between"),
        ({"cps": -1}, ValueError, "cps must be a finite number >= 0 (0 or None: no throttle)"),
        ({"cps": float("inf")}, ValueError, "got inf"),
        ({"cps": "10"}, TypeError, "cps must be a number of characters per second or None"),
        ({"cps": True}, TypeError, "got True"),
        ({"check_present": "yes"}, TypeError, "check_present must be True or False, got 'yes'"),
        ({"disable_hupcl": 1}, TypeError, "disable_hupcl must be True or False, got 1"),
        ({"parity": "X"}, ValueError, "parity must be one of"),
        ({"exclusive": "no"}, TypeError, "exclusive must be True or False"),
        ({"speed": 9600}, TypeError, "unknown serial setting(s) speed; expected baudrate"),
    ],
)
def test_bad_options_fail_at_construction(
    pty_path: str, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        PySerial(pty_path, **kwargs)
    assert message in str(info.value)


def test_cps_zero_means_off(pty_path: str) -> None:
    assert PySerial(pty_path, cps=0).cps is None
    assert PySerial(pty_path, cps=10).cps == 10.0


def test_bad_urls_fail_at_construction() -> None:
    with pytest.raises(TypeError, match="port must be a device path or URL string, got 5"):
        PySerial(5)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedURLError, match="'bogus'"):
        PySerial("bogus://x")


def test_check_present_names_the_missing_port(tmp_path: Path) -> None:
    path = str(tmp_path / "ttyUSB9")
    with pytest.raises(PortNotFoundError) as info:
        PySerial(path)
    assert repr(path) in str(info.value)
    assert "check_present=False" in str(info.value)
    assert info.value.port == path
    assert info.value.errno == errno.ENOENT
    # A port that appears later (USB from the board under test):
    assert PySerial(path, check_present=False).url == path


def test_check_present_refuses_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "not-a-tty"
    path.write_text("")
    with pytest.raises(NotASerialPortError, match="not a character device"):
        PySerial(path)


def test_check_present_does_not_open_the_port(pty_path: str, opens: list[PortCore]) -> None:
    PySerial(pty_path)
    assert opens == []  # an open would toggle DTR and may reset the board


def test_urls_count_as_present(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever the URL transports are, presence is not a filesystem question.
    monkeypatch.setitem(OPENERS, "fake", open_core)
    assert PySerial("fake://nowhere:1").url == "fake://nowhere:1"


# ------------------------------------------------------------------ connect


async def test_connect_carries_data_both_ways(pty: tuple[str, PtyDevice]) -> None:
    path, device = pty
    driver = PySerial(path)
    async with driver.connect() as stream:
        assert isinstance(stream, DriverStream)
        assert stream.serial.port == path
        await stream.send_all(b"ping")
        assert await receive_exactly(device, 4) == b"ping"
        await device.send_all(b"pong")
        assert await receive_exactly(stream, 4) == b"pong"
        assert stream.statistics().bytes_sent == 4
    assert stream.fileno() == -1
    # The last connection closed the port: the device sees the hangup.
    with trio.fail_after(5):
        assert await device.receive_some() == b""


async def test_connections_share_one_open(
    pty: tuple[str, PtyDevice], opens: list[PortCore], no_fd_leaks: None
) -> None:
    path, device = pty
    driver = PySerial(path)  # exclusive=True: a second open(2) would be refused
    async with driver.connect() as one, driver.connect() as two:
        assert len(opens) == 1
        assert one.fileno() != two.fileno()
        with pytest.raises(PortBusyError):  # the lock is held for everyone else
            await open_serial_port(path)
        await one.send_all(b"1")
        await two.send_all(b"2")
        assert await receive_exactly(device, 2) == b"12"
        await one.aclose()  # one ends; the other goes on
        await device.send_all(b"x")
        assert await two.receive() == b"x"
        await two.send_all(b"y")
        assert await receive_exactly(device, 1) == b"y"
    async with await open_serial_port(path):
        pass  # the lock went with the last connection
    async with driver.connect():
        assert len(opens) == 2


async def test_connections_share_the_lines_settings(pty: tuple[str, PtyDevice]) -> None:
    # One tty, one set of termios: a change made through one connection is in
    # force for all of them, and each must say so (and not skip a change back).
    driver = PySerial(pty[0])

    def line_speed(stream: DriverStream) -> int:
        return int(termios.tcgetattr(stream.fileno())[4])

    async with driver.connect() as one:
        await one.serial.reconfigure(baudrate=9600)
        async with driver.connect() as two:
            assert line_speed(two) == termios.B9600
            assert two.serial.settings.baudrate == 9600
            await two.serial.reconfigure(baudrate=115200)
            assert line_speed(one) == termios.B115200
            assert one.serial.settings.baudrate == 115200
        assert one.serial.settings.baudrate == 115200


async def test_closing_a_connection_keeps_others_output(
    pty: tuple[str, PtyDevice], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing a port discards its queued output (so close cannot hang); a
    # connection's fd is only a dup, and must not discard what others queued.
    path, _ = pty
    modem = FakeModem()

    def open_with_modem(url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
        return TtyPort.open(url, settings, options, ioctl=modem)

    monkeypatch.setattr(trioserial._driver, "open_core", open_with_modem)
    driver = PySerial(path)
    async with driver.connect() as one, driver.connect() as two:
        modem.out_queue = 100  # output that cannot drain: flow control holds the line
        await trio.aclose_forcefully(one)
        assert not [e for e in modem.events if e[1] == "discard output"]
        await trio.aclose_forcefully(two)  # the line's last close discards, so it cannot hang
    assert [e[1] for e in modem.events] == ["discard output"]


async def test_connect_cancelled_during_open_leaks_nothing(
    pty: tuple[str, PtyDevice], no_fd_leaks: None
) -> None:
    driver = PySerial(pty[0])
    with trio.CancelScope() as scope:
        scope.cancel()
        async with driver.connect():
            raise AssertionError(
                "the body runs until its first checkpoint only"
            )  # pragma: no cover
    driver.close()


async def test_connect_reports_open_errors(tmp_path: Path) -> None:
    driver = PySerial(str(tmp_path / "gone"), check_present=False)
    with pytest.raises(PortNotFoundError):
        async with driver.connect():
            pass  # pragma: no cover


async def test_disable_hupcl(pty: tuple[str, PtyDevice]) -> None:
    path, _ = pty
    # A pty starts without HUPCL; a UART has it. Set it, as a UART would have.
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        attrs_ = termios.tcgetattr(fd)
        attrs_[2] |= termios.HUPCL
        termios.tcsetattr(fd, termios.TCSANOW, attrs_)
        async with PySerial(path).connect() as stream:
            assert termios.tcgetattr(stream.fileno())[2] & termios.HUPCL
        async with PySerial(path, disable_hupcl=True).connect() as stream:
            assert not termios.tcgetattr(stream.fileno())[2] & termios.HUPCL
        assert not termios.tcgetattr(fd)[2] & termios.HUPCL  # and it stays cleared
    finally:
        os.close(fd)


# -------------------------------------------------------------------- close


async def test_close_with_nothing_connected_and_twice(pty: tuple[str, PtyDevice]) -> None:
    driver = PySerial(pty[0])
    driver.close()
    driver.close()
    async with driver.connect() as stream:
        driver.close()
        driver.close()
        assert await stream.receive_some() == b""
    driver.close()


async def test_close_from_another_thread_wakes_a_blocked_receiver(
    pty: tuple[str, PtyDevice], no_fd_leaks: None
) -> None:
    path, device = pty
    driver = PySerial(path)
    got: list[bytes] = []
    async with driver.connect() as stream, trio.open_nursery() as nursery:
        fds = [stream.fileno()]

        async def reader() -> None:
            got.append(await stream.receive_some())

        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert stream.statistics().tasks_waiting_receive == 1

        def close_and_look() -> list[str | None]:
            assert threading.current_thread() is not threading.main_thread()
            driver.close()
            # close() has returned: the fds must be gone already.
            return [fd_target(fd) for fd in fds]

        with trio.fail_after(5):
            after = await trio.to_thread.run_sync(close_and_look)
        assert after == [None]
    assert got == [b""]  # end of stream, not an error
    assert stream.closed_by_driver
    assert await stream.receive_some() == b""
    with pytest.raises(trio.EndOfChannel, match="closed by the driver"):
        await stream.receive()
    with pytest.raises(trio.ClosedResourceError, match="closed by the driver"):
        await stream.send_all(b"late")
    with trio.fail_after(5):
        assert await device.receive_some() == b""  # the device saw the port go


async def test_close_ends_every_connection(pty: tuple[str, PtyDevice]) -> None:
    path, device = pty
    driver = PySerial(path, exclusive=False)
    results: list[bytes] = []
    async with driver.connect() as one, driver.connect() as two:
        async with trio.open_nursery() as nursery:
            for stream in (one, two):
                nursery.start_soon(_append, results, stream)
            await trio.testing.wait_all_tasks_blocked()
            driver.close()  # from the Trio thread this time
        assert results == [b"", b""]
        assert one.fileno() == two.fileno() == -1
    # The driver is still usable: Jumpstarter closes at lease end and goes on.
    async with driver.connect() as again:
        await device.send_all(b"next lease")
        assert await receive_exactly(again, 10) == b"next lease"


async def _append(results: list[bytes], stream: DriverStream) -> None:
    results.append(await stream.receive_some())


async def test_close_after_the_run_ended(pty: tuple[str, PtyDevice]) -> None:
    # close() from a thread after its trio.run() finished: nothing to wake, nothing open.
    driver = PySerial(pty[0])
    async with driver.connect():
        pass
    await trio.to_thread.run_sync(driver.close)


def test_close_from_a_thread_after_the_loop_is_gone(pty_path: str) -> None:
    # Jumpstarter calls close() from worker threads, possibly after the event
    # loop that used the driver has finished: it must neither hang nor fail.
    driver = PySerial(pty_path)

    async def main() -> None:
        async with driver.connect():
            pass

    trio.run(main)
    errors: list[BaseException] = []

    def close() -> None:
        try:
            driver.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=close)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert errors == []
    driver.close()  # and from this (non-Trio) thread


async def test_close_during_an_open_covers_that_connection_too(
    linked_pty: tuple[str, PtyDevice], gated_open: GatedOpen, no_fd_leaks: None
) -> None:
    driver = PySerial(linked_pty[0])
    got: list[bytes] = []

    async def connect_and_read() -> None:
        async with driver.connect() as stream:
            got.append(await stream.receive_some())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(connect_and_read)
        await gated_open.wait_entered()
        driver.close()  # the lease ends while the port is still opening
        gated_open.release()
    assert got == [b""]


async def test_connect_cancelled_while_the_open_runs_leaks_nothing(
    linked_pty: tuple[str, PtyDevice], gated_open: GatedOpen, no_fd_leaks: None
) -> None:
    driver = PySerial(linked_pty[0])
    reached: list[str] = []

    async def connect() -> None:
        async with driver.connect():
            reached.append("body")  # pragma: no cover

    async with trio.open_nursery() as nursery:
        nursery.start_soon(connect)
        await gated_open.wait_entered()
        nursery.cancel_scope.cancel()  # the open thread cannot be interrupted ...
        gated_open.release()  # ... so the cancellation waits for it, then closes its fd
    assert reached == []  # as open_serial_port: a cancelled open runs no body
    assert not driver._connections  # the line was closed too


# ------------------------------------------------------------------ DTR/RTS


@pytest.fixture
def modem(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeModem, list[PortCore]]:
    """A modem model in the ioctl seam of every port the driver opens (a pty has no lines)."""
    model = FakeModem(loopback=True)
    opened: list[PortCore] = []

    def open_with_modem(url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
        core = TtyPort.open(url, settings, options, ioctl=model)  # the real pty, fake lines
        opened.append(core)
        return core

    monkeypatch.setattr(trioserial._driver, "open_core", open_with_modem)
    return model, opened


async def test_set_dtr_rts_use_the_live_handle(
    pty: tuple[str, PtyDevice], modem: tuple[FakeModem, list[PortCore]]
) -> None:
    model, opened = modem
    driver = PySerial(pty[0])
    async with driver.connect() as stream:
        driver.set_dtr(True)
        driver.set_rts(True)
        assert (model.dtr, model.rts) == (True, True)
        assert stream.serial.dsr  # the loopback plug: DSR follows DTR
        await trio.to_thread.run_sync(driver.set_dtr, False)  # from a worker thread too
        assert model.dtr is False
        assert len(opened) == 1  # no second open (that would re-assert lines, flush input)
    assert [e[1:] for e in model.events if e[1] in ("dtr", "rts")] == [
        ("dtr", True),
        ("rts", True),
        ("dtr", False),
    ]


async def test_set_dtr_with_nothing_connected_opens_briefly_and_remembers(
    pty: tuple[str, PtyDevice], modem: tuple[FakeModem, list[PortCore]]
) -> None:
    model, opened = modem
    driver = PySerial(pty[0])
    await trio.to_thread.run_sync(driver.set_rts, True)
    assert model.rts is True
    assert len(opened) == 1
    assert opened[0].closed
    driver.set_dtr(True)
    model.dtr = model.rts = False  # the close dropped them (HUPCL), as on a UART
    async with driver.connect():
        assert (model.dtr, model.rts) == (True, True)  # re-applied at the next open


async def test_set_dtr_on_a_pty_says_it_cannot(pty: tuple[str, PtyDevice]) -> None:
    driver = PySerial(pty[0])
    with pytest.raises(UnsupportedOperationError, match="DTR"):
        driver.set_dtr(True)  # nothing connected: a brief open, and the real ioctl
    async with driver.connect():
        with pytest.raises(UnsupportedOperationError, match="RTS"):
            driver.set_rts(False)
    with pytest.raises(TypeError, match="dtr must be True or False, got 1"):
        driver.set_dtr(1)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- cps


async def test_cps_paces_on_trios_clock(
    pty: tuple[str, PtyDevice], autojump_clock: trio.testing.MockClock
) -> None:
    path, device = pty
    async with PySerial(path, cps=10).connect() as stream:
        start = trio.current_time()
        await stream.send_all(b"0123456789A")  # 11 characters: 10 gaps of 0.1 s
        assert trio.current_time() - start == pytest.approx(1.0)
        assert await receive_exactly(device, 11) == b"0123456789A"
        # The pace holds across calls: B waits for its slot 0.1 s after A.
        start = trio.current_time()
        await stream.send_all(b"BC")
        assert trio.current_time() - start == pytest.approx(0.2)
        # After a pause, no burst to "catch up": one character at once, then the pace.
        await trio.sleep(10)  # autojump clock: virtual time
        start = trio.current_time()
        await stream.send_all(b"DEF")
        assert trio.current_time() - start == pytest.approx(0.2)
        assert await receive_exactly(device, 5) == b"BCDEF"


async def test_cancelled_throttled_send_reports_what_went_out(
    pty: tuple[str, PtyDevice], autojump_clock: trio.testing.MockClock
) -> None:
    path, device = pty
    data = bytes(range(100))
    async with PySerial(path, cps=10).connect() as stream:
        before = stream.statistics().bytes_sent
        with trio.move_on_after(2.55):  # characters go at 0.0, 0.1, ... 2.5
            await stream.send_all(data)
        sent = stream.statistics().bytes_sent - before
        assert sent == 26
        assert await receive_exactly(device, sent) == data[:sent]
        # Resuming with the rest loses and duplicates nothing.
        await stream.send_all(data[sent:])
        assert await receive_exactly(device, 100 - sent) == data[sent:]


async def test_fast_cps_sends_in_small_bursts(
    pty: tuple[str, PtyDevice], autojump_clock: trio.testing.MockClock
) -> None:
    path, device = pty
    async with PySerial(path, cps=10_000).connect() as stream:
        start = trio.current_time()
        await stream.send_all(bytes(1000))
        # 100-character bursts (10 ms worth), the first one at once.
        assert trio.current_time() - start == pytest.approx(0.09)
        assert await receive_exactly(device, 1000) == bytes(1000)


async def test_throttled_send_checks_like_an_unthrottled_one(
    pty: tuple[str, PtyDevice],
) -> None:
    async with PySerial(pty[0], cps=5).connect() as stream:
        with pytest.raises(TypeError, match="got str"):
            await stream.send_all("text")  # type: ignore[arg-type]
        await stream.send_all(b"")
        await stream.send_eof()
        with pytest.raises(trio.ClosedResourceError, match="after sending EOF"):
            await stream.send_all(b"x")


async def test_set_dtr_never_opens_a_network_port_on_the_event_loop() -> None:
    # With nothing connected, set_dtr opens the port briefly. For rfc2217:// that
    # is DNS, a TCP connect and negotiation: refused in the Trio thread ...
    port = socket_port_nobody_listens_on()
    driver = PySerial(f"rfc2217://127.0.0.1:{port}")
    with pytest.raises(RuntimeError, match=r"set_dtr\(\) on 'rfc2217://127.0.0.1:\d+' with no"):
        driver.set_dtr(True)
    with pytest.raises(RuntimeError, match="set_rts"):
        PySerial(f"spy://socket://127.0.0.1:{port}").set_rts(True)
    # ... and done as asked from a worker thread (here: the connection is refused).
    with pytest.raises(trioserial.SerialPortError, match="refused"):
        await trio.to_thread.run_sync(driver.set_dtr, True)


def socket_port_nobody_listens_on() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_close_wakes_a_throttled_sender_at_once(
    pty: tuple[str, PtyDevice], autojump_clock: trio.testing.MockClock
) -> None:
    # cps=0.001: the second character is due 1000 s after the first. A close
    # must wake the sender now, not when its slot comes (the clock must not move).
    path, device = pty
    driver = PySerial(path, cps=0.001)
    async with driver.connect() as stream:
        errors: list[BaseException] = []

        async def send() -> None:
            try:
                await stream.send_all(b"abc")
            except trio.ClosedResourceError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            driver.close()
        assert trio.current_time() == start
        assert [str(e) for e in errors] == ["serial port was closed by the driver"]
        assert stream.statistics().bytes_sent == 1
    assert await device.receive_some() == b"a"


async def test_set_dtr_while_a_connect_opens_is_applied_to_that_open(
    linked_pty: tuple[str, PtyDevice], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A brief open beside the connect's open would fight it for the exclusive
    # lock (one of the two fails with PortBusyError), and its close drops the
    # line; the level must go to the connection being opened instead.
    model = FakeModem(loopback=True)
    opened: list[PortCore] = []
    entered, proceed = threading.Event(), threading.Event()

    def gated_open(url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
        entered.set()
        proceed.wait()
        core = TtyPort.open(url, settings, options, ioctl=model)
        opened.append(core)
        return core

    monkeypatch.setattr(trioserial._driver, "open_core", gated_open)
    driver = PySerial(linked_pty[0])
    async with trio.open_nursery() as nursery:

        async def connect() -> None:
            async with driver.connect() as stream:
                assert (model.dtr, model.rts) == (True, False)
                assert stream.serial.dsr

        nursery.start_soon(connect)
        try:
            with trio.fail_after(5):
                await trio.to_thread.run_sync(entered.wait)
                await trio.to_thread.run_sync(driver.set_dtr, True, abandon_on_cancel=True)
            driver.set_rts(False)
            assert opened == []
        finally:
            proceed.set()  # never leave the connect's open (or a brief one) parked
    assert len(opened) == 1


async def test_set_dtr_during_a_connect_on_a_pty_fails_neither_that_open_nor_later_ones(
    linked_pty: tuple[str, PtyDevice], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The level is only remembered while the connect opens; a pty has no DTR,
    # so that open must not fail for it (the set_dtr caller was told "done"),
    # and no later connect may fail for a level that never was in force.
    entered, proceed = threading.Event(), threading.Event()

    def gated_open(url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
        entered.set()
        proceed.wait()
        return TtyPort.open(url, settings, options)

    monkeypatch.setattr(trioserial._driver, "open_core", gated_open)
    driver = PySerial(linked_pty[0])
    async with trio.open_nursery() as nursery:

        async def connect() -> None:
            async with driver.connect():
                pass

        nursery.start_soon(connect)
        try:
            with trio.fail_after(5):
                await trio.to_thread.run_sync(entered.wait)
                await trio.to_thread.run_sync(driver.set_dtr, True, abandon_on_cancel=True)
        finally:
            proceed.set()
    async with driver.connect():
        pass

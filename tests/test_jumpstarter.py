# Jumpstarter's gRPC stubs declare servicer methods abstract that only its Session
# implements; at run time nothing is abstract.
# mypy: disable-error-code="abstract"
"""The Jumpstarter driver, through Jumpstarter's own ``serve()`` and client.

``serve()`` runs a real exporter session (gRPC over a unix socket, anyio's
asyncio backend) in a background thread and hands back the real
``PySerialClient``; the device is a pty master in this thread. Tests that
need the driver's side of an exception call ``connect()`` directly.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import serial
import trio.testing

pytest.importorskip("jumpstarter")
pytest.importorskip("jumpstarter_driver_pyserial")

from jumpstarter.common.utils import serve
from jumpstarter_driver_pyserial.client import PySerialClient
from jumpstarter_driver_pyserial.driver import PySerial as OriginalPySerial

import trioserial
from trioserial.anyio import AnyioSerialStream, SerialAttribute
from trioserial.jumpstarter import PySerial
from trioserial.testing import FakeModem


@contextmanager
def pty_device() -> Iterator[tuple[int, str]]:
    """``(master_fd, slave_path)``, with no slave fd left open by the test."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    try:
        yield master, path
    finally:
        os.close(master)


def port_released(master: int) -> bool:
    """Whether no process holds the pty slave open (the master sees a hangup)."""
    poller = select.poll()
    poller.register(master, select.POLLIN)
    return any(ev & select.POLLHUP for _, ev in poller.poll(0))


def port_has_reader(stream: Any) -> bool:
    return bool(stream.port.statistics().tasks_waiting_receive)


def wait_port_open(master: int) -> None:
    """Wait until the exporter has opened the port (the pty has no event for
    that, so look every few ms; the deadline turns a bug into a failure)."""
    deadline = time.monotonic() + 10
    while port_released(master):
        assert time.monotonic() < deadline, "the exporter never opened the port"
        time.sleep(0.005)  # bounded poll, noqa: no event for a pty open


def read_exactly(master: int, n: int) -> bytes:
    data = b""
    poller = select.poll()
    poller.register(master, select.POLLIN)
    while len(data) < n:
        assert poller.poll(10_000), "the device got nothing"
        data += os.read(master, n - len(data))
    return data


def receive_exactly(stream: Any, n: int) -> bytes:
    data = b""
    while len(data) < n:
        data += stream.receive()
    return data


# ------------------------------------------------------------ drop-in surface


def test_same_config_and_client_as_the_original() -> None:
    original = {f.name: f.default for f in OriginalPySerial.__dataclass_fields__.values()}
    ours = {f.name: f.default for f in PySerial.__dataclass_fields__.values()}
    for name in ("url", "baudrate", "check_present", "cps", "disable_hupcl"):
        assert ours[name] == original[name], name
    assert PySerial.client() == OriginalPySerial.client()
    assert PySerial.client() == "jumpstarter_driver_pyserial.client.PySerialClient"
    assert PySerial.driver_type == "serial"
    for method in ("connect", "close", "set_dtr", "set_rts"):
        assert hasattr(
            getattr(PySerial, method),
            "marker_streamcall" if method == "connect" else "marker_drivercall",
        ), method


def test_subclasses_cooperate_in_post_init() -> None:
    seen = []

    @dataclass(kw_only=True)
    class Mine(PySerial):
        label: str = field(default="x")

        def __post_init__(self) -> None:
            super().__post_init__()
            seen.append(self.label)

    driver = Mine(url="loop://", label="console")
    assert seen == ["console"]
    assert driver.logger is not None  # Driver.__post_init__ ran too


def test_missing_port() -> None:
    with pytest.raises(serial.SerialException, match="/dev/doesNotExist"):
        PySerial(url="/dev/doesNotExist")
    with pytest.raises(trioserial.PortNotFoundError):
        PySerial(url="/dev/doesNotExist")
    # check_present=False: the exporter starts; a connection fails (the
    # exporter logs the PortNotFoundError, the client's stream is broken).
    with (
        serve(PySerial(url="/dev/doesNotExist", check_present=False)) as client,
        client.stream() as stream,
        pytest.raises(anyio.BrokenResourceError),
    ):
        stream.receive()


def test_check_present_refuses_what_is_not_a_serial_port(tmp_path: Path) -> None:
    """A regular file or a directory must stop the exporter from starting, as
    the original's open does; passed through, every client would get
    Jumpstarter's opaque "RPC already finished"."""
    regular = tmp_path / "not-a-tty"
    regular.write_text("")
    for path in (regular, tmp_path):
        with pytest.raises(serial.SerialException, match="not a character device") as info:
            PySerial(url=str(path))
        assert isinstance(info.value, trioserial.NotASerialPortError)
        assert not held_open(path)


def held_open(path: Path) -> bool:
    """Whether anything in this process still holds *path* open (the check must not open)."""
    return any(
        os.path.realpath(f"/proc/self/fd/{fd}") == str(path) for fd in os.listdir("/proc/self/fd")
    )


def test_negative_cps_means_no_throttle_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """The original treats cps <= 0 as "no throttling"; an exporter configured
    so must start, send at full speed, and say why."""

    async def main() -> bytes:
        async with PySerial(url="loop://", cps=-1).connect() as stream:
            await stream.send(b"hello")
            return await stream.receive()

    assert anyio.run(main, backend="asyncio") == b"hello"  # one item: not paced
    assert "cps -1 is negative: sending without throttling" in caplog.text
    with serve(PySerial(url="loop://", cps=-5)) as client, client.stream() as stream:
        stream.send(b"up")
        assert stream.receive() == b"up"


@pytest.mark.parametrize(
    ("cps", "error"), [(True, TypeError), ("10", TypeError), (float("inf"), ValueError)]
)
def test_cps_that_is_no_rate_is_refused(cps: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="cps must be"):
        PySerial(url="loop://", cps=cps)  # type: ignore[arg-type]


def test_check_present_does_not_open_the_port() -> None:
    """Opening pulses DTR (a board reset); construction must not."""
    with pty_device() as (master, path):
        PySerial(url=path)
        assert port_released(master)


# ----------------------------------------------------------------- streams


def test_loop_echoes_one_item_per_send() -> None:
    with serve(PySerial(url="loop://")) as client, client.stream() as stream:
        stream.send(b"hello")
        stream.send(b"world")
        assert stream.receive() == b"hello"
        assert stream.receive() == b"world"


def test_pty_round_trip_both_ways() -> None:
    payload = bytes(i % 251 for i in range(50_000))
    with pty_device() as (master, path):
        driver = PySerial(url=path)
        with serve(driver) as client:
            with client.stream() as stream:
                stream.send(b"AT\r\n")
                assert read_exactly(master, 4) == b"AT\r\n"
                os.write(master, payload[:4000])
                assert receive_exactly(stream, 4000) == payload[:4000]
                stream.send(payload)
                assert read_exactly(master, len(payload)) == payload
            # The client left (send_eof, then the end of its stream), but
            # Jumpstarter's forwarding keeps the exporter's side of that
            # connection, reading the port, until a write to the departed
            # client fails, which may be never (the original driver is held
            # the same way; docs/jumpstarter.rst). Its reader would race a new
            # client's for the device's next bytes, so end it as an exporter
            # can, with close(), and see that a new client then gets every byte.
            driver.close()
            assert port_released(master)
            with client.stream() as stream:
                wait_port_open(master)
                os.write(master, b"again")
                assert receive_exactly(stream, 5) == b"again"


def test_pexpect_through_the_original_client() -> None:
    with serve(PySerial(url="loop://")) as client:
        assert isinstance(client, PySerialClient)
        with client.pexpect() as session:
            session.sendline("hello")
            assert session.expect("hello") == 0


def test_pexpect_against_a_device_on_a_pty() -> None:
    with (
        pty_device() as (master, path),
        serve(PySerial(url=path)) as client,
        client.pexpect() as session,
    ):
        session.sendline("version")
        wait_port_open(master)  # pexpect's connection is made lazily
        assert read_exactly(master, 8) == b"version\n"
        os.write(master, b"U-Boot 2024.01\r\n=> ")
        assert session.expect("=> ") == 0
        assert b"U-Boot 2024.01" in session.before


def test_cps_throttles_one_byte_per_interval() -> None:
    """In virtual time (trio's autojump clock): 5 bytes at 5 cps take 4 gaps
    of 0.2 s, and the pacing carries over to the next send."""

    async def main() -> tuple[list[bytes], list[float]]:
        driver = PySerial(url="loop://", cps=5)
        async with driver.connect() as stream:
            start = anyio.current_time()
            await stream.send(b"hello")
            first = anyio.current_time() - start
            await stream.send(b"!")
            second = anyio.current_time() - start
            return [await stream.receive() for _ in range(6)], [first, second]

    clock = trio.testing.MockClock(autojump_threshold=0)
    items, times = anyio.run(main, backend="trio", backend_options={"clock": clock})
    assert items == [b"h", b"e", b"l", b"l", b"o", b"!"]
    assert times == [pytest.approx(0.8), pytest.approx(1.0)]


def test_close_wakes_a_throttled_sender_at_once() -> None:
    """cps=0.001: the second byte is due 1000 s after the first. close() must
    wake the sender now (in virtual time: the clock does not move)."""

    async def main() -> tuple[list[type[BaseException]], float]:
        driver = PySerial(url="loop://", cps=0.001)
        errors: list[type[BaseException]] = []
        async with driver.connect() as stream:

            async def send() -> None:
                try:
                    await stream.send(b"abc")
                except anyio.ClosedResourceError as exc:
                    errors.append(type(exc))

            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                await trio.testing.wait_all_tasks_blocked()
                start = anyio.current_time()
                driver.close()
            return errors, anyio.current_time() - start

    clock = trio.testing.MockClock(autojump_threshold=0)
    errors, waited = anyio.run(main, backend="trio", backend_options={"clock": clock})
    assert errors == [anyio.ClosedResourceError]
    assert waited == 0


@pytest.mark.parametrize("cps", [None, 0])
def test_no_throttle_sends_in_one_piece(cps: float | None) -> None:
    async def main() -> bytes:
        async with PySerial(url="loop://", cps=cps).connect() as stream:
            await stream.send(b"hello")
            return await stream.receive()

    assert anyio.run(main, backend="asyncio") == b"hello"


def test_cps_through_the_exporter() -> None:
    with (
        pty_device() as (master, path),
        serve(PySerial(url=path, cps=2000)) as client,
        client.stream() as stream,
    ):
        stream.send(b"slow typing")
        assert read_exactly(master, 11) == b"slow typing"


# ------------------------------------------------------------------- close


def test_close_ends_streams_cleanly_and_releases_the_port() -> None:
    with pty_device() as (master, path), serve(PySerial(url=path)) as client:
        with client.stream() as stream:
            os.write(master, b"x")
            assert stream.receive() == b"x"
            assert not port_released(master)
            outcome: list[BaseException] = []

            def blocked_reader() -> None:
                try:
                    stream.receive()
                except BaseException as exc:
                    outcome.append(exc)

            reader = threading.Thread(target=blocked_reader)
            reader.start()
            client.call("close")
            # The fd is closed by the time close() returns: a flasher can open now.
            assert port_released(master)
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            os.close(fd)
            reader.join(10)
            assert [type(e) for e in outcome] == [anyio.EndOfStream]
        client.call("close")  # no connection: nothing to do
        with client.stream() as stream:  # and the driver still works
            os.write(master, b"y")
            assert stream.receive() == b"y"


def test_close_from_the_event_loop_thread() -> None:
    """At lease end the exporter calls close() in the event loop's own thread."""

    async def main(master: int, path: str) -> None:
        driver = PySerial(url=path)
        async with driver.connect() as stream:
            driver.close()
            assert port_released(master)
            with pytest.raises(anyio.EndOfStream):
                await stream.receive()
            await stream.send_eof()  # a departing client after the close: no error
        # And from a thread anyio knows nothing about, with a receive blocked.
        async with driver.connect() as stream:
            closer = threading.Thread(target=driver.close)
            async with anyio.create_task_group() as tg:

                async def start_closer_when_blocked() -> None:
                    while not port_has_reader(stream):
                        await anyio.lowlevel.checkpoint()
                    closer.start()

                tg.start_soon(start_closer_when_blocked)
                with pytest.raises(anyio.EndOfStream):
                    await stream.receive()
            await anyio.to_thread.run_sync(closer.join)
            assert port_released(master)

    with pty_device() as (master, path):
        anyio.run(main, master, path, backend="asyncio")


def test_close_ends_loop_connections() -> None:
    with serve(PySerial(url="loop://")) as client, client.stream() as stream:
        client.call("close")
        with pytest.raises(anyio.EndOfStream):
            stream.receive()


# ----------------------------------------------------------- hangup, send_eof


def test_hangup_is_an_oserror_from_receive() -> None:
    """Jumpstarter swallows BrokenResourceError and the client would hang; an
    OSError ends the session."""

    async def main() -> None:
        master, slave = os.openpty()
        path = os.ttyname(slave)
        os.close(slave)
        async with PySerial(url=path).connect() as stream:
            os.close(master)
            with pytest.raises(OSError, match="hung up") as info:
                await stream.receive()
            assert isinstance(info.value, trioserial.SerialPortError)
            assert info.value.errno == errno.EIO
            with pytest.raises(OSError, match="failed"):
                await stream.send(b"x")

    anyio.run(main, backend="asyncio")


def test_hangup_reaches_the_client() -> None:
    """The device is unplugged: the client's session ends instead of hanging."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    with serve(PySerial(url=path)) as client, client.stream() as stream:
        stream.send(b"hi")
        assert read_exactly(master, 2) == b"hi"
        os.close(master)
        with pytest.raises(anyio.EndOfStream):
            stream.receive()


def test_send_eof_does_not_close_the_port() -> None:
    async def main(master: int, path: str) -> None:
        async with PySerial(url=path).connect() as stream:
            await stream.send_eof()
            await stream.send_eof()
            os.write(master, b"still open")
            assert await stream.receive() == b"still open"
            assert stream.extra(SerialAttribute.port) == path

    with pty_device() as (master, path):
        anyio.run(main, master, path, backend="asyncio")


def test_disable_hupcl() -> None:
    with pty_device() as (_master, path):
        keeper = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            attrs = termios.tcgetattr(keeper)
            attrs[2] |= termios.HUPCL
            termios.tcsetattr(keeper, termios.TCSANOW, attrs)
            for disable, expected in ((False, True), (True, False)):
                with (
                    serve(PySerial(url=path, disable_hupcl=disable)) as client,
                    client.stream() as stream,
                ):
                    stream.send(b".")
                    assert bool(termios.tcgetattr(keeper)[2] & termios.HUPCL) is expected
        finally:
            os.close(keeper)


# ------------------------------------------------------------------ DTR/RTS


@dataclass(kw_only=True)
class ModemPySerial(PySerial):
    """The driver with a model of a UART's lines plugged into each port it
    opens: a pty has none (ENOTTY), so the routing of set_dtr/set_rts to the
    live handle is tested through the ioctl seam."""

    modems: list[FakeModem] = field(default_factory=list)

    async def open_port(self) -> AnyioSerialStream:
        port = await super().open_port()
        self.modems.append(FakeModem(loopback=False).attach(port))  # type: ignore[arg-type]
        return port


def test_dtr_rts_use_the_live_connection() -> None:
    with pty_device() as (master, path):
        driver = ModemPySerial(url=path)
        with serve(driver) as client, client.stream() as stream:
            stream.send(b".")
            assert read_exactly(master, 1) == b"."
            client.call("set_dtr", True)
            client.call("set_rts", False)
            client.call("set_rts", True)
            [modem] = driver.modems  # one open: the live handle was used
            assert (modem.dtr, modem.rts) == (True, True)
            client.call("set_dtr", False)
            assert (modem.dtr, modem.rts) == (False, True)
            assert [e[1:] for e in modem.events] == [("dtr", True), ("rts", True), ("dtr", False)]


def test_dtr_on_a_pty_reports_the_missing_modem_lines() -> None:
    """A real pty has no modem lines: the client gets an error naming the port,
    with a connection (live handle) and without one (short-lived handle)."""
    with pty_device() as (master, path), serve(PySerial(url=path)) as client:
        with pytest.raises(Exception, match="does not support setting DTR"):
            client.call("set_dtr", True)
        with client.stream() as stream:
            stream.send(b".")
            assert read_exactly(master, 1) == b"."
            with pytest.raises(Exception, match="does not support setting RTS"):
                client.call("set_rts", True)


def test_dtr_rts_after_close_use_the_new_connection() -> None:
    """The flasher sequence "close, then toggle DTR/RTS into the bootloader":
    a connection the driver closed stays registered until Jumpstarter's
    forwarding ends it, and must not make set_dtr/set_rts fail for good."""
    with pty_device() as (master, path):
        driver = ModemPySerial(url=path)
        with serve(driver) as client, client.stream() as old:
            old.send(b".")
            assert read_exactly(master, 1) == b"."
            client.call("close")  # old's exporter side is still there
            with client.stream() as new:
                new.send(b",")
                assert read_exactly(master, 1) == b","
                client.call("set_dtr", True)
                client.call("set_rts", True)
                closed, live = driver.modems  # no brief open beside the live connection
                assert (live.dtr, live.rts) == (True, True)
                assert closed.events == []


def test_a_device_gone_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The client sees a clean end of stream and Jumpstarter keeps the driver's
    error to itself: the exporter's log is where an operator learns why."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    with serve(PySerial(url=path)) as client, client.stream() as stream:
        stream.send(b"hi")
        assert read_exactly(master, 2) == b"hi"
        os.close(master)
        with pytest.raises(anyio.EndOfStream):
            stream.receive()
    [record] = [r for r in caplog.records if "went away" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert repr(path) in record.getMessage()
    assert "hung up" in record.getMessage()

"""serve_rfc2217 with real clients nobody here wrote: pyserial's rfc2217://, socat;
and our own rfc2217:// and socket:// clients.

The served ports are ptys (data, termios) and ``loop://`` (the only port here
whose DTR/RTS loop back to DSR/CTS: a pty has no modem lines). pyserial's
client blocks, so it runs in a worker thread, each call under the test's
``trio.fail_after``.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import subprocess
import sys
import termios
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
import serial
import serial.rfc2217
import trio
from conftest import open_fds
from url_servers import need, pty_fds

import trioserial
from trioserial.testing import EchoDevice

__all__ = ["pty_fds"]  # the fixture, used by name

# pyserial's rfc2217 client calls Thread.setDaemon()/setName(), deprecated in Python 3.10.
pytestmark = pytest.mark.filterwarnings(
    "ignore:setDaemon:DeprecationWarning", "ignore:setName:DeprecationWarning"
)

DEADLINE = 20
T = TypeVar("T")
ALL_BYTES = bytes(range(256)) + b"\xff\xff\x00\xff"


@asynccontextmanager
async def serving(port: Any, **options: Any) -> AsyncIterator[str]:
    """Run serve_rfc2217(*port*) in a nursery; yield ``HOST:PORT``; cancel it at the end."""
    async with trio.open_nursery() as nursery:
        host, number = await nursery.start(
            lambda task_status: trioserial.serve_rfc2217(
                port, port_number=0, task_status=task_status, **options
            )
        )
        try:
            yield f"{host}:{number}"
        finally:
            nursery.cancel_scope.cancel()


async def in_thread(fn: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


def pyserial(address: str, **kwargs: Any) -> serial.rfc2217.Serial:
    port = serial.serial_for_url(f"rfc2217://{address}", timeout=5, **kwargs)
    assert isinstance(port, serial.rfc2217.Serial)
    return port


def read_exactly(port: serial.SerialBase, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = port.read(n - len(got))
        assert chunk, f"timed out after {len(got)} of {n} bytes"
        got += chunk
    return got


async def read_fd(fd: int, n: int) -> bytes:
    os.set_blocking(fd, False)
    got = b""
    while len(got) < n:
        await trio.lowlevel.wait_readable(fd)
        got += os.read(fd, n - len(got))
    return got


async def write_fd(fd: int, data: bytes) -> None:
    """Write all of *data* to a pty master, waiting for room (the server runs meanwhile)."""
    os.set_blocking(fd, False)
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(fd)


async def receive_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = await stream.receive_some(n - len(got))
        assert chunk, f"end of stream after {len(got)} of {n} bytes"
        got += chunk
    return got


async def wait_closed(stream: trio.SocketStream) -> None:
    """Read until the server closes the connection (whatever came before is dropped)."""
    with trio.fail_after(DEADLINE):
        while await stream.receive_some():
            pass


class LogWaiter(logging.Handler):
    """Wake a task when the server logs a line containing some text (no polling)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.changed = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.changed.set()  # the server logs from the Trio thread

    async def wait_for(self, text: str) -> None:
        with trio.fail_after(DEADLINE):
            while not any(text in line for line in self.lines):
                self.changed = trio.Event()
                await self.changed.wait()


@pytest.fixture
def server_log() -> Iterator[LogWaiter]:
    logger = logging.getLogger("trioserial.server")
    waiter = LogWaiter()
    logger.addHandler(waiter)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield waiter
    finally:
        logger.removeHandler(waiter)
        logger.setLevel(level)


async def connect(address: str) -> trio.SocketStream:
    host, number = address.rsplit(":", 1)
    return await trio.open_tcp_stream(host, int(number))


# ----------------------------------------------------------- pyserial's client


async def test_pyserial_all_bytes_both_ways_and_settings_reach_the_ptys_termios(
    pty_fds: tuple[int, int, str],
) -> None:
    # No ?ign_set_control: every request is answered, DTR/RTS on a pty too
    # (kept as asked), so pyserial's client opens. ser2net fails this.
    master, slave, path = pty_fds
    with trio.fail_after(DEADLINE):
        async with serving(path) as address:
            client = await in_thread(lambda: pyserial(address, baudrate=9600))
            try:
                assert termios.tcgetattr(slave)[5] == termios.B9600  # ospeed
                await in_thread(lambda: client.write(ALL_BYTES))
                assert await read_fd(master, len(ALL_BYTES)) == ALL_BYTES
                os.write(master, ALL_BYTES)
                assert await in_thread(lambda: read_exactly(client, len(ALL_BYTES))) == ALL_BYTES

                def change() -> None:
                    client.baudrate = 57600
                    client.stopbits = serial.STOPBITS_TWO
                    client.rtscts = True
                    client.dtr = False  # answered though a pty has no DTR

                await in_thread(change)
                assert termios.tcgetattr(slave)[5] == termios.B57600
                cflag = termios.tcgetattr(slave)[2]
                assert cflag & termios.CSTOPB
                assert cflag & termios.CRTSCTS
                # A pty takes parity and 7 data bits and silently keeps CS8 and
                # no parity (DESIGN.md section 4): the request is answered, the
                # pty cannot show it.
                await in_thread(lambda: setattr(client, "parity", serial.PARITY_EVEN))
                assert client.parity == serial.PARITY_EVEN
            finally:
                await in_thread(client.close)


async def test_pyserial_dtr_rts_reach_dsr_cts_through_a_served_loop() -> None:
    with trio.fail_after(DEADLINE):
        async with (
            await trioserial.open_serial_port("loop://") as loop,
            serving(loop) as address,
        ):
            client = await in_thread(lambda: pyserial(address))
            try:
                assert await in_thread(lambda: (client.dsr, client.cts)) == (True, True)
                await in_thread(lambda: setattr(client, "dtr", False))
                assert loop.dtr is False
                assert await in_thread(lambda: (client.dsr, client.cts)) == (False, True)
                await in_thread(lambda: setattr(client, "rts", False))
                assert await in_thread(lambda: (client.dsr, client.cts)) == (False, False)
                assert (loop.dtr, loop.rts) == (False, False)
                await in_thread(lambda: client.write(b"echo\xff"))
                assert await in_thread(lambda: read_exactly(client, 5)) == b"echo\xff"
            finally:
                await in_thread(client.close)


async def test_a_rejected_setting_is_answered_with_the_old_one(
    pty_fds: tuple[int, int, str],
) -> None:
    # A data size of 4 is one RFC 2217 does not define: answered with the 8 in force.
    master, _, path = pty_fds
    with trio.fail_after(DEADLINE):
        async with serving(path) as address:
            client = await in_thread(lambda: pyserial(address))
            try:

                def bad() -> None:
                    client._rfc2217_port_settings["datasize"].set(b"\x04")  # type: ignore[attr-defined]
                    client._rfc2217_port_settings["datasize"].wait(5)  # type: ignore[attr-defined]

                with pytest.raises(ValueError, match="remote rejected value for option 'datasize'"):
                    await in_thread(bad)
                assert client.bytesize == 8  # and the port still works
                await in_thread(lambda: client.write(b"ok"))
                assert await read_fd(master, 2) == b"ok"
            finally:
                await in_thread(client.close)


# --------------------------------------------------------- trioserial clients


async def test_our_rfc2217_client_settings_modem_lines_and_purge() -> None:
    with trio.fail_after(DEADLINE):
        async with (
            await trioserial.open_serial_port("loop://") as loop,
            serving(loop) as address,
            await trioserial.open_serial_port(f"rfc2217://{address}") as port,
        ):
            await port.send_all(ALL_BYTES)
            assert await receive_exactly(port, len(ALL_BYTES)) == ALL_BYTES
            await port.reconfigure(baudrate=19200, parity="E")
            port.dtr = False
            await port.send_all(b"!")  # after the requests, in order: applied by now
            assert await receive_exactly(port, 1) == b"!"
            assert loop.settings.baudrate == 19200
            assert loop.settings.parity == trioserial.Parity.EVEN
            assert loop.dtr is False
            # The server reported DSR (looped back from DTR) before echoing "!".
            assert (port.dsr, port.cts) == (False, True)
            port.reset_input_buffer()
            await port.send_all(b"after purge")
            assert await receive_exactly(port, 11) == b"after purge"


async def test_our_socket_client_against_the_raw_server(pty_fds: tuple[int, int, str]) -> None:
    master, _, path = pty_fds
    with trio.fail_after(DEADLINE):
        async with (
            serving(path, raw=True) as address,
            await trioserial.open_serial_port(f"socket://{address}") as port,
        ):
            await port.send_all(ALL_BYTES)  # raw: 0xFF is just a byte
            assert await read_fd(master, len(ALL_BYTES)) == ALL_BYTES
            os.write(master, ALL_BYTES)
            assert await receive_exactly(port, len(ALL_BYTES)) == ALL_BYTES


async def test_a_fake_device_is_served_on_a_pty() -> None:
    with trio.fail_after(DEADLINE):
        async with serving(EchoDevice(), raw=True) as address:
            stream = await connect(address)
            async with stream:
                await stream.send_all(b"hello")
                assert await receive_exactly(stream, 5) == b"hello"


# ------------------------------------------------------------- raw clients


async def test_socat_as_a_raw_client(pty_fds: tuple[int, int, str]) -> None:
    need("socat")
    master, _, path = pty_fds
    with trio.fail_after(DEADLINE):
        async with serving(path, raw=True) as address:
            result = await trio.run_process(
                ["socat", "-t", "5", "-", f"tcp:{address}"],
                stdin=b"from socat\xff\x00",
                capture_stdout=True,
                check=False,
            )
            assert result.returncode == 0
            assert await read_fd(master, 12) == b"from socat\xff\x00"


# ------------------------------------------------------- several clients


async def test_observers_see_everything_and_cannot_write(
    pty_fds: tuple[int, int, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "trioserial.server")
    master, _, path = pty_fds
    with trio.fail_after(DEADLINE):
        async with serving(path, raw=True, observers=2) as address:
            controller = await connect(address)
            watchers = [await connect(address), await connect(address)]
            refused = await connect(address)
            await wait_closed(refused)  # a fourth client: no room
            os.write(master, b"boot log")
            for stream in [controller, *watchers]:
                assert await receive_exactly(stream, 8) == b"boot log"
            await watchers[0].send_all(b"ignored")
            await controller.send_all(b"typed")
            assert await read_fd(master, 5) == b"typed"  # and nothing from the observer
            for stream in [controller, *watchers, refused]:
                await stream.aclose()
    assert "refused" in caplog.text
    assert "what it sends is dropped" in caplog.text


async def test_a_slow_client_is_disconnected_and_stalls_nobody(
    pty_fds: tuple[int, int, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "trioserial.server")
    master, _, path = pty_fds
    with trio.fail_after(DEADLINE):
        async with serving(path, raw=True, observers=1, client_buffer=65536) as address:
            controller = await connect(address)
            sleeper = await connect(address)  # never reads
            sleeper.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            block = bytes(range(256)) * 16
            total = 0
            # Far more than the sleeper's socket buffers and queue can hold.
            while "too slow" not in caplog.text:
                await write_fd(master, block)
                total += len(block)
                assert await receive_exactly(controller, len(block)) == block
            assert total > 65536
            os.write(master, b"still here")
            assert await receive_exactly(controller, 10) == b"still here"
            await controller.aclose()
            await sleeper.aclose()


async def test_a_client_killed_mid_transfer_leaves_the_port_to_the_next(
    pty_fds: tuple[int, int, str], server_log: LogWaiter
) -> None:
    need("socat")
    master, _, path = pty_fds
    os.set_blocking(master, False)

    async def drain(task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        while True:
            await trio.lowlevel.wait_readable(master)
            os.read(master, 65536)

    with trio.fail_after(DEADLINE):
        async with serving(path, raw=True) as address:
            process = await trio.lowlevel.open_process(
                ["socat", "-u", "/dev/zero", f"tcp:{address}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                assert await read_fd(master, 4096) == b"\x00" * 4096  # flowing
            finally:
                process.kill()
                await process.wait()
            async with trio.open_nursery() as nursery:
                await nursery.start(drain)  # the server may be blocked writing to the pty
                await server_log.wait_for("disconnected")
                nursery.cancel_scope.cancel()
            stream = await connect(address)
            await stream.send_all(b"N")
            got = b""
            while not got.endswith(b"N"):
                got += await read_fd(master, 1)
            assert got.lstrip(b"\x00") == b"N"  # the new client controls the port
            os.write(master, b"to the new one")
            assert await receive_exactly(stream, 14) == b"to the new one"
            await stream.aclose()


async def test_garbage_closes_that_client_only(
    pty_fds: tuple[int, int, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "trioserial.server")
    master, _, path = pty_fds
    with trio.fail_after(DEADLINE):
        async with (
            serving(path, observers=1) as address,
            await trioserial.open_serial_port(f"rfc2217://{address}") as port,
        ):
            vandal = await connect(address)
            await vandal.send_all(b"\xff\x05 not telnet")
            await wait_closed(vandal)
            await vandal.aclose()
            await port.send_all(b"fine")
            assert await read_fd(master, 4) == b"fine"
    assert "malformed Telnet: IAC followed by 5" in caplog.text


async def test_device_data_waits_in_the_backlog_between_clients(
    pty_fds: tuple[int, int, str], server_log: LogWaiter
) -> None:
    master, _, path = pty_fds
    with trio.fail_after(DEADLINE):
        async with serving(path, raw=True, backlog=10) as address:
            first = await connect(address)
            await first.aclose()
            await server_log.wait_for("disconnected")
            os.write(master, b"0123456789abcdef")  # more than the backlog: the rest waits
            second = await connect(address)
            assert await receive_exactly(second, 16) == b"0123456789abcdef"
            await second.aclose()


async def test_the_served_port_is_closed_with_no_fd_left_on_cancel(
    pty_fds: tuple[int, int, str],
) -> None:
    _, _, path = pty_fds
    before = open_fds()
    with trio.fail_after(DEADLINE):
        async with serving(path) as address:
            port = await trioserial.open_serial_port(f"rfc2217://{address}")
            opened = open_fds() - before
            targets = {os.readlink(f"/proc/self/fd/{fd}") for fd in opened}
            assert path in targets  # the server holds the pty
        await port.aclose()
    assert open_fds() - before == set()


async def test_a_served_fake_device_leaves_no_fd_either() -> None:
    before = open_fds()
    with trio.fail_after(DEADLINE):
        async with serving(EchoDevice()) as address:
            stream = await connect(address)
            await stream.send_all(b"\xff\xffhi")  # an escaped 0xFF, then "hi"
            got = b""
            while not got.endswith(b"\xff\xffhi"):  # after the server's offers
                got += await stream.receive_some()
            opened = {os.readlink(f"/proc/self/fd/{fd}") for fd in open_fds() - before}
            assert "/dev/ptmx" in opened  # the pty pair the device runs on
        await stream.aclose()
    assert open_fds() - before == set()


async def test_binding_beyond_loopback_warns(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(DEADLINE):
        async with serving("loop://", host="0.0.0.0"):
            pass
    assert "no authentication" in caplog.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"observers": -1}, "observers must be an int >= 0, got -1"),
        ({"client_buffer": 10}, "client_buffer must be an int >= 65536, got 10"),
        ({"raw": "yes"}, "raw"),
        ({"port_number": 70000}, "port_number must be 0 to 65535, got 70000"),
    ],
)
async def test_bad_arguments_name_the_value(options: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        await trioserial.serve_rfc2217("loop://", **options)


async def test_a_port_that_is_not_one_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="port must be an AsyncSerial"):
        await trioserial.serve_rfc2217(42)


# ------------------------------------------------------------------- CLI


async def test_cli_serve_logs_connections_and_stops_on_sigint() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        number = probe.getsockname()[1]
    command = [sys.executable, "-m", "trioserial", "serve", "loop://", "--listen",
               f"127.0.0.1:{number}"]  # fmt: skip
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            functools.partial(trio.run_process, command, stderr=subprocess.PIPE, check=False)
        )
        assert process.stderr is not None
        lines = b""
        with trio.fail_after(DEADLINE):
            while b"serving" not in lines:
                lines += await process.stderr.receive_some()
            stream = await trio.open_tcp_stream("127.0.0.1", number)
            await stream.send_all(b"\xff\xfd\x2cping")  # DO COM-PORT-OPTION, then data
            got = b""
            while not got.endswith(b"ping"):  # after the server's offers: the echo
                got += await stream.receive_some()
            await stream.aclose()
            while b"disconnected" not in lines:
                lines += await process.stderr.receive_some()
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 128 + signal.SIGINT
    text = lines.decode()
    assert f"serving loop:// on 127.0.0.1:{number} (RFC 2217)" in text
    assert "connected, controlling" in text


def test_cli_serve_default_port_is_the_server_s() -> None:
    # The CLI keeps its own copy so that building the parser does not import the server.
    from trioserial import _cli_serve, _server

    assert _cli_serve.DEFAULT_PORT_NUMBER == _server.DEFAULT_PORT_NUMBER


def test_cli_serve_rejects_a_bad_listen_address() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trioserial", "serve", "loop://", "--listen", "localhost"],
        capture_output=True,
        text=True,
        check=False,
        timeout=DEADLINE,
    )
    assert result.returncode == 2
    assert "--listen must be HOST:PORT with a port of 0 to 65535, got 'localhost'" in result.stderr


async def test_a_suspended_client_gets_nothing_until_it_is_too_far_behind(
    pty_fds: tuple[int, int, str], server_log: LogWaiter
) -> None:
    # FLOWCONTROL-SUSPEND holds everything for that client: it reads all it
    # gets, gets nothing, and is disconnected once its queue passes the limit.
    master, _, path = pty_fds
    suspend = bytes((255, 250, 44, 8, 255, 240))
    with trio.fail_after(DEADLINE):
        async with serving(path, client_buffer=65536) as address:
            stream = await connect(address)
            await stream.send_all(suspend + b"typed")
            assert await read_fd(master, 5) == b"typed"  # requests before it were handled
            received = b""

            async def read_all() -> None:
                nonlocal received
                while chunk := await stream.receive_some():
                    received += chunk

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_all)
                await write_fd(master, b"x" * 80_000)  # more than the queue holds
                await server_log.wait_for("too slow")
            await stream.aclose()
    assert b"x" not in received  # the server's offers only: no data while suspended


async def test_control_passes_to_the_next_client_and_observers_stay_observers(
    pty_fds: tuple[int, int, str], server_log: LogWaiter
) -> None:
    master, _, path = pty_fds
    with trio.fail_after(DEADLINE):
        async with serving(path, raw=True, observers=1) as address:
            first = await connect(address)
            watcher = await connect(address)
            await first.aclose()
            await server_log.wait_for("disconnected")
            second = await connect(address)
            await watcher.send_all(b"w")
            await second.send_all(b"s")
            assert await read_fd(master, 1) == b"s"  # the watcher's byte was dropped
            os.write(master, b"both")
            assert await receive_exactly(watcher, 4) == b"both"
            assert await receive_exactly(second, 4) == b"both"
            await watcher.aclose()
            await second.aclose()
    assert sum("connected, controlling" in line for line in server_log.lines) == 2


async def test_the_server_ends_with_an_error_when_the_port_hangs_up() -> None:
    master, slave = os.openpty()
    try:
        port = await trioserial.open_serial_port(os.ttyname(slave))
    finally:
        os.close(slave)
    async with port:
        os.close(master)  # the device side is gone before the server starts
        with trio.fail_after(DEADLINE), pytest.raises(trioserial.SerialPortError) as info:
            await trioserial.serve_rfc2217(port, port_number=0)  # a plain error, no group
        assert str(info.value) == f"the served port {port.port!r} hung up"


async def test_an_address_in_use_is_a_plain_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        number = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            await trioserial.serve_rfc2217("loop://", port_number=number)


async def test_a_client_that_reads_late_gets_everything_in_order(
    pty_fds: tuple[int, int, str],
) -> None:
    # More than the sockets hold: the rest waits in the client's queue (under
    # its limit) and leaves in order once the client reads again.
    master, _, path = pty_fds
    data = bytes(range(256)) * 24000  # 6 MB (above Linux's 4 MiB socket send buffer), IACs too
    with trio.fail_after(DEADLINE):
        async with serving(path, client_buffer=8 << 20) as address:
            stream = await connect(address)
            # Small, but above loopback's MSS (a smaller one stalls TCP itself).
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 131072)
            await stream.send_all(bytes((255, 253, 0, 255, 251, 0)))  # DO, WILL BINARY
            await write_fd(master, data)  # returns once the server has read it all
            client = trioserial._telnet.RFC2217Client()
            got = b""
            while len(got) < len(data):
                client.receive_data(await stream.receive_some())
                while (event := client.next_event()) is not trioserial._telnet.NEED_DATA:
                    if isinstance(event, trioserial._telnet.Data):
                        got += event.data
            assert got == data
            await stream.aclose()

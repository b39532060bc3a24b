"""rfc2217:// against three real servers: ser2net and sredird in front of a pty,
and pyserial's PortManager over pyserial's loop:// (the one with working modem lines).

A pty has no modem lines and ignores break, so with ser2net and sredird the
tests check what the pty shows (data, termios) and that the server
acknowledged the rest; DTR->DSR and RTS->CTS are shown with PortManager.
"""

from __future__ import annotations

import os
import socket
import struct
import termios
from functools import partial

import anyio
import pytest
import trio
import trio.testing
from tty_helpers import get_baudrate
from url_servers import (
    PortManagerServer,
    PtyServer,
    free_tcp_port,
    portmanager_loop,
    pty_fds,
    ser2net,
    sredird,
    start_socat,
    stop,
)

import trioserial
import trioserial.anyio
from trioserial import StopBits
from trioserial._rfc2217 import RFC2217Port

__all__ = ["portmanager_loop", "pty_fds", "ser2net", "sredird"]  # fixtures used by name


def rfc(port: trioserial.AsyncSerial) -> RFC2217Port:
    core = port._core
    assert isinstance(core, RFC2217Port)
    return core


async def read_fd(fd: int, n: int) -> bytes:
    """Read exactly *n* bytes from a pty master, waiting on readiness."""
    os.set_blocking(fd, False)
    got = b""
    while len(got) < n:
        await trio.lowlevel.wait_readable(fd)
        got += os.read(fd, n - len(got))
    return got


async def receive_exactly(port: trioserial.AsyncSerial, n: int) -> bytes:
    got = b""
    while len(got) < n:
        got += await port.receive_some(n - len(got))
    return got


async def until_answered(port: trioserial.AsyncSerial) -> None:
    """Wait (on the socket) until the server has answered every request."""
    with trio.fail_after(10):
        while rfc(port).pending_acknowledgements():
            await trio.lowlevel.wait_readable(port.fileno())


async def round_trip(port: trioserial.AsyncSerial, master: int) -> None:
    """Send a marker through the server: every earlier command has been applied."""
    await port.send_all(b"!")
    assert await read_fd(master, 1) == b"!"


ALL_BYTES = bytes(range(256)) + b"\xff\xff\x00\xff"


# ------------------------------------------------------------------ ser2net


async def test_ser2net_data_both_ways_including_iac_and_nul(ser2net: PtyServer) -> None:
    url = ser2net.url + "?ign_set_control"
    async with await trioserial.open_serial_port(url) as port:
        assert port.transport == "rfc2217"
        await port.send_all(ALL_BYTES)
        assert await read_fd(ser2net.master, len(ALL_BYTES)) == ALL_BYTES
        os.write(ser2net.master, ALL_BYTES)
        assert await receive_exactly(port, len(ALL_BYTES)) == ALL_BYTES


async def test_ser2net_settings_show_in_the_ptys_termios(ser2net: PtyServer) -> None:
    url = ser2net.url + "?ign_set_control"
    async with await trioserial.open_serial_port(url, baudrate=9600) as port:
        assert get_baudrate(ser2net.slave) == 9600  # applied before open returned
        new = port.settings.replace(baudrate=57600, stopbits=2, rtscts=True)
        rfc(port).apply_settings(new)
        await round_trip(port, ser2net.master)
        assert port.settings == new
        assert get_baudrate(ser2net.slave) == 57600
        cflag = termios.tcgetattr(ser2net.slave)[2]
        assert cflag & termios.CSTOPB
        assert cflag & termios.CRTSCTS
        await until_answered(port)


async def test_ser2net_acknowledges_break_and_purge(ser2net: PtyServer) -> None:
    async with await trioserial.open_serial_port(ser2net.url + "?ign_set_control") as port:
        core = rfc(port)
        core.set_break(True)  # a pty ignores break; the server still takes it
        core.set_break(False)
        core.reset_input_buffer()
        core.reset_output_buffer()
        assert core.pending_acknowledgements() >= 0
        await until_answered(port)  # both purges acknowledged
        await port.send_all(b"after")
        assert await read_fd(ser2net.master, 5) == b"after"


async def test_ser2net_on_a_pty_never_answers_set_control(ser2net: PtyServer) -> None:
    # Without ign_set_control the client waits for SET-CONTROL answers that a
    # pty-backed ser2net never sends: a clear error that says what to do.
    with pytest.raises(trioserial.SerialPortError, match="ign_set_control") as info:
        await trioserial.open_serial_port(ser2net.url + "?timeout=0.3")
    assert ser2net.url in str(info.value)


async def test_ser2net_modem_state_is_reported(ser2net: PtyServer) -> None:
    async with await trioserial.open_serial_port(ser2net.url + "?ign_set_control") as port:
        lines = rfc(port).modem_lines()  # ser2net sends one at connect (all off on a pty)
        assert (lines.dtr, lines.rts) == (True, True)


# ------------------------------------------------------------------ sredird


async def test_sredird_data_and_baud_rate(sredird: PtyServer) -> None:
    url = sredird.url + "?ign_set_control"
    async with await trioserial.open_serial_port(url, baudrate=19200) as port:
        assert get_baudrate(sredird.slave) == 19200
        await port.send_all(ALL_BYTES)
        assert await read_fd(sredird.master, len(ALL_BYTES)) == ALL_BYTES
        os.write(sredird.master, b"\xffreply\x00")
        assert await receive_exactly(port, 7) == b"\xffreply\x00"
        rfc(port).apply_settings(port.settings.replace(baudrate=38400))
        await round_trip(port, sredird.master)
        assert get_baudrate(sredird.slave) == 38400


async def test_sredird_rejecting_a_baud_rate_is_an_error_and_settings_say_what_is_in_force(
    sredird: PtyServer,
) -> None:
    # sredird cannot make 921600: it falls back to 9600 and answers so.
    # RFC 2217's answer is the rate in force, and settings must say that.
    url = sredird.url + "?ign_set_control"
    async with await trioserial.open_serial_port(url, baudrate=9600) as port:
        await port.reconfigure(baudrate=19200)  # accepted: in force when the call returns
        assert port.settings.baudrate == 19200
        assert get_baudrate(sredird.slave) == 19200
        with pytest.raises(trioserial.UnsupportedOperationError) as info:
            await port.reconfigure(baudrate=921600)
        message = str(info.value)
        assert "rejected baudrate 921600 baud (it answered 9600 baud)" in message
        assert url in message
        assert port.settings.baudrate == 9600
        assert get_baudrate(sredird.slave) == 9600
        # The port goes on working at the rate in force.
        await port.send_all(b"still here")
        assert await read_fd(sredird.master, 10) == b"still here"
        # Stop bits acknowledged, the rate rejected: settings say exactly that.
        with pytest.raises(trioserial.UnsupportedOperationError):
            await port.reconfigure(baudrate=921600, stopbits=2)
        assert (port.settings.baudrate, port.settings.stopbits) == (9600, StopBits.TWO)
        await port.send_all(b"!")  # behind the settings: applied when it arrives
        assert await read_fd(sredird.master, 1) == b"!"
        assert termios.tcgetattr(sredird.slave)[2] & termios.CSTOPB


async def test_reconfigure_while_another_task_is_blocked_receiving(sredird: PtyServer) -> None:
    # The receiver waits on the socket; the settings' answer still reaches
    # reconfigure, and data that arrives meanwhile still reaches the receiver.
    url = sredird.url + "?ign_set_control"
    async with await trioserial.open_serial_port(url, baudrate=9600) as port:
        received = trio.Event()

        async def receiver() -> None:
            assert await receive_exactly(port, 5) == b"hello"
            received.set()

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receiver)
                await trio.testing.wait_all_tasks_blocked()
                await port.reconfigure(baudrate=38400)
                assert get_baudrate(sredird.slave) == 38400
                with pytest.raises(trioserial.UnsupportedOperationError):
                    await port.reconfigure(baudrate=921600)
                os.write(sredird.master, b"hello")
                await received.wait()


def test_anyio_reconfigure_while_another_task_is_blocked_receiving(sredird: PtyServer) -> None:
    async def main() -> None:
        url = sredird.url + "?ign_set_control"
        async with (
            await trioserial.anyio.open_serial_port(url, baudrate=9600) as port,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(port.receive)
            await anyio.wait_all_tasks_blocked()  # the receiver waits on the socket
            await port.reconfigure(baudrate=38400)
            assert port.settings.baudrate == 38400
            tg.cancel_scope.cancel()

    anyio.run(main, backend="asyncio")


def test_sredird_rejection_through_anyio_on_asyncio(sredird: PtyServer) -> None:
    async def main() -> None:
        url = sredird.url + "?ign_set_control"
        async with await trioserial.anyio.open_serial_port(url, baudrate=9600) as port:
            with pytest.raises(trioserial.UnsupportedOperationError, match="921600 baud"):
                await port.reconfigure(baudrate=921600)
            assert port.settings.baudrate == 9600

    anyio.run(main, backend="asyncio")


async def test_a_server_that_never_answers_the_settings(nursery: trio.Nursery) -> None:
    # It answers the open, then nothing: reconfigure ends at ?timeout, saying so.
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port_no = listeners[0].socket.getsockname()[1]
    opened = trio.Event()

    async def serve() -> None:
        async with listeners[0], await listeners[0].accept() as stream:
            await stream.send_all(bytes((255, 253, 44, 255, 251, 44)))
            buffer = bytearray()
            while not opened.is_set():
                buffer += await stream.receive_some()
                for command, value in client_requests(buffer):
                    answer = bytes((255, 250, 44, command + 100)) + value + bytes((255, 240))
                    await stream.send_all(answer)
                    if command == 12:
                        opened.set()
            await trio.sleep_forever()

    nursery.start_soon(serve)
    url = f"rfc2217://127.0.0.1:{port_no}?timeout=0.3"
    async with await trioserial.open_serial_port(url) as port:
        with trio.fail_after(10), pytest.raises(trioserial.SerialPortError, match=r"within 0\.3 s"):
            await port.reconfigure(baudrate=9600)


async def test_a_receive_that_starts_while_reconfigure_waits(nursery: trio.Nursery) -> None:
    # The server holds its answer to the new baud rate until told: a receive
    # started meanwhile waits on the socket as usual (no "another task is
    # waiting" error), and both complete once the answer and data arrive.
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port_no = listeners[0].socket.getsockname()[1]
    answer_now = trio.Event()

    async def serve() -> None:
        async with listeners[0], await listeners[0].accept() as stream:
            await stream.send_all(bytes((255, 253, 44, 255, 251, 44)))
            buffer = bytearray()
            while True:
                chunk = await stream.receive_some()
                if not chunk:
                    return
                buffer += chunk
                for command, value in client_requests(buffer):
                    if command == 1 and value == struct.pack("!I", 9600):
                        await answer_now.wait()
                        value = value + b"late"  # the answer, then data behind it
                    answer = bytes((255, 250, 44, command + 100)) + value[:4] + bytes((255, 240))
                    await stream.send_all(answer + value[4:])

    nursery.start_soon(serve)
    async with await trioserial.open_serial_port(f"rfc2217://127.0.0.1:{port_no}") as port:
        got: list[bytes] = []

        async def receiver() -> None:
            got.append(await receive_exactly(port, 4))

        with trio.fail_after(10):
            async with trio.open_nursery() as inner:
                inner.start_soon(partial(port.reconfigure, baudrate=9600))
                await trio.testing.wait_all_tasks_blocked()
                inner.start_soon(receiver)
                await trio.testing.wait_all_tasks_blocked()
                answer_now.set()
        assert got == [b"late"]
        assert port.settings.baudrate == 9600


# -------------------------------------------------------------- PortManager


async def wait_modem(port: trioserial.AsyncSerial, **expected: bool) -> None:
    """Wait on the socket until the server's modem-state notifications show *expected*."""
    with trio.fail_after(10):
        while True:
            try:
                lines = rfc(port).modem_lines()
            except trioserial.UnsupportedOperationError:
                pass  # no NOTIFY-MODEMSTATE yet
            else:
                if all(getattr(lines, k) == v for k, v in expected.items()):
                    return
            await trio.lowlevel.wait_readable(port.fileno())


async def test_spy_keeps_what_the_front_ends_must_know_of_its_port(
    portmanager_loop: PortManagerServer,
) -> None:
    # The front ends ask the core whether it buffers input (a receive's wait
    # must then be interruptible) and whether its close keeps the output; a
    # spy:// wrapper must answer as the rfc2217:// port inside it.
    async with await trioserial.open_serial_port("spy://" + portmanager_loop.url) as port:
        core = port._core
        assert core.buffers_input is True
        assert core.close_keeps_output is True
    async with await trioserial.open_serial_port("spy://loop://") as port:
        assert port._core.buffers_input is False


async def test_portmanager_dtr_dsr_and_rts_cts_loop_back(
    portmanager_loop: PortManagerServer,
) -> None:
    async with await trioserial.open_serial_port(portmanager_loop.url) as port:
        await wait_modem(port, dsr=True, cts=True)
        rfc(port).set_dtr(False)
        await wait_modem(port, dsr=False, cts=True)
        rfc(port).set_rts(False)
        await wait_modem(port, dsr=False, cts=False)
        rfc(port).set_dtr(True)
        await wait_modem(port, dsr=True, cts=False)
        assert portmanager_loop.serial.dtr is True
        assert portmanager_loop.serial.rts is False
        await until_answered(port)


async def test_portmanager_echo_with_many_iac_bytes(portmanager_loop: PortManagerServer) -> None:
    data = b"\xff" * 100_000 + bytes(range(256)) * 100
    async with await trioserial.open_serial_port(portmanager_loop.url) as port:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(port.send_all, data)
            assert await receive_exactly(port, len(data)) == data
        assert port.statistics().bytes_sent == len(data)


async def test_portmanager_settings_break_and_purge(portmanager_loop: PortManagerServer) -> None:
    url = portmanager_loop.url + "?poll_modem&timeout=5&logging=debug"
    async with await trioserial.open_serial_port(url, baudrate=9600, parity="E") as port:
        assert portmanager_loop.serial.baudrate == 9600
        assert portmanager_loop.serial.parity == "E"
        core = rfc(port)
        core.apply_settings(port.settings.replace(baudrate=4800, bytesize=7, xonxoff=True))
        core.set_break(True)
        core.set_break(False)
        core.reset_output_buffer()
        await until_answered(port)  # PortManager answers every request, control included
        assert portmanager_loop.serial.baudrate == 4800
        assert portmanager_loop.serial.bytesize == 7
        assert portmanager_loop.serial.xonxoff is True
        assert core.in_waiting() == 0
        assert core.out_waiting() >= 0
        await wait_modem(port, cd=True)  # pyserial's loop:// has CD on


async def test_cancelled_receive_while_only_protocol_bytes_arrive(
    portmanager_loop: PortManagerServer,
) -> None:
    async with await trioserial.open_serial_port(portmanager_loop.url) as port:
        with trio.move_on_after(0.2) as scope:
            # Modem-state notifications arrive, but no data: keep waiting.
            rfc(port).set_dtr(False)
            await port.receive_some()
        assert scope.cancelled_caught
        await port.send_all(b"data")
        assert await receive_exactly(port, 4) == b"data"


# ------------------------------------------------------------ bad servers


async def test_a_raw_tcp_server_is_not_an_rfc2217_server() -> None:
    port = free_tcp_port()
    process = start_socat(f"tcp-listen:{port},bind=127.0.0.1,reuseaddr", "pty,raw,echo=0")
    try:
        url = f"rfc2217://127.0.0.1:{port}?timeout=0.2"
        with pytest.raises(trioserial.SerialPortError, match="RFC 2217 negotiation") as info:
            await trioserial.open_serial_port(url)
        assert url in str(info.value)
        # The hint fits the step: not ign_set_control, which cannot help here.
        assert "socket://" in str(info.value)
        assert "ign_set_control" not in str(info.value)
    finally:
        stop(process)


async def test_server_refusing_com_port_option(nursery: trio.Nursery) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def refuse() -> None:
        async with listeners[0], await listeners[0].accept() as stream:
            await stream.send_all(bytes((255, 254, 44)))  # IAC DONT COM-PORT-OPTION
            await stream.receive_some()

    nursery.start_soon(refuse)
    with pytest.raises(trioserial.SerialPortError, match="does not speak RFC 2217"):
        await trioserial.open_serial_port(f"rfc2217://127.0.0.1:{port}")


async def test_server_closing_mid_stream(portmanager_loop: PortManagerServer) -> None:
    async with await trioserial.open_serial_port(portmanager_loop.url) as port:
        await port.send_all(b"last words")
        assert await receive_exactly(port, 10) == b"last words"
        portmanager_loop.hang_up.set()
        with trio.fail_after(10):
            while await port.receive_some():
                pass
        with pytest.raises(trio.EndOfChannel):
            await port.receive()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("rfc2217://localhost:2217?bogus", "unknown option 'bogus'"),
        ("rfc2217://localhost:2217?ign_set_control=1", "unexpected value for option"),
        ("rfc2217://localhost:2217?logging=verbose", "malformed logging level 'verbose'"),
        ("rfc2217://localhost:2217?timeout=0", "malformed timeout '0'"),
        ("rfc2217://localhost", "missing port"),
        ("rfc2217://localhost:x", "malformed port 'x'"),
        ("rfc2217://localhost:\u00b2", "malformed port '\u00b2'"),  # str.isdigit() says yes
        ("rfc2217://localhost:\u0661\u0662", "malformed port"),  # int() reads these digits
        ("rfc2217://localhost:65536", "malformed port '65536'"),
        ("rfc2217://[::1]", "missing port in 'rfc2217://\\[::1\\]'"),
        ("rfc2217://[::1]x:2217", "malformed host"),
        ("rfc2217://localhost:2217/dev/ttyS0", "unexpected path '/dev/ttyS0'"),
    ],
)
async def test_malformed_rfc2217_urls(url: str, message: str) -> None:
    with pytest.raises(trioserial.UnsupportedURLError, match=message):
        await trioserial.open_serial_port(url)


async def test_refused_connection() -> None:
    with pytest.raises(trioserial.PortNotFoundError, match="connection refused"):
        await trioserial.open_serial_port(f"rfc2217://127.0.0.1:{free_tcp_port()}")


async def test_rtscts_with_xonxoff_cannot_be_asked_for() -> None:
    with pytest.raises(ValueError, match="rtscts and xonxoff"):
        await trioserial.open_serial_port("rfc2217://127.0.0.1:1", rtscts=True, xonxoff=True)


# ------------------------------------------- escaping at a full socket buffer
# Where the kernel cuts a send cannot be chosen on a real socket, so these
# tests give the core a socket whose send() takes a scripted number of bytes:
# the narrowest seam that shows a cut in the middle of an escaped 0xFF.


class ScriptedSocket:
    def __init__(self, *takes: int) -> None:
        self.takes = list(takes)  # bytes accepted per send(); -1 = EAGAIN
        self.wire = bytearray()

    def send(self, data: bytes | bytearray | memoryview) -> int:
        take = self.takes.pop(0) if self.takes else len(data)
        if take < 0:
            raise BlockingIOError(11, "full")
        n = min(take, len(data))
        self.wire += bytes(data[:n])
        return n

    def recv(self, n: int) -> bytes:
        raise BlockingIOError(11, "nothing")

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return 99

    def close(self) -> None:
        pass


def scripted_core(sock: ScriptedSocket) -> RFC2217Port:
    from trioserial._rfc2217 import Options
    from trioserial._telnet import RFC2217Client

    return RFC2217Port(
        sock,  # type: ignore[arg-type]
        "rfc2217://test:1",
        trioserial.SerialSettings(),
        RFC2217Client(),
        Options("rfc2217://test:1"),
    )


def test_a_cut_inside_an_escaped_iac_is_completed_before_anything_else() -> None:
    # "a\xffb" is escaped to "a\xff\xffb"; the kernel takes 2 bytes, then is full.
    sock = ScriptedSocket(2, -1, -1)
    core = scripted_core(sock)
    data = memoryview(b"a\xffb")
    assert core.write_nowait(data) == 1  # "a" only: the 0xFF is half sent
    with pytest.raises(BlockingIOError):
        core.write_nowait(data[1:])  # the second IAC still finds no room
    assert core.write_nowait(data[1:]) == 1  # now it went out: the 0xFF is done
    assert core.write_nowait(data[2:]) == 1
    assert sock.wire == b"a\xff\xffb"
    core._sock = None


def test_a_cut_at_the_first_byte_reports_nothing_written() -> None:
    sock = ScriptedSocket(1, -1)
    core = scripted_core(sock)
    with pytest.raises(BlockingIOError):
        core.write_nowait(memoryview(b"\xff"))
    assert core.write_nowait(memoryview(b"\xff")) == 1
    assert sock.wire == b"\xff\xff"
    core._sock = None


def test_control_requests_queue_behind_a_half_sent_iac() -> None:
    sock = ScriptedSocket(1, -1, -1)
    core = scripted_core(sock)
    with pytest.raises(BlockingIOError):
        core.write_nowait(memoryview(b"\xff"))
    core.set_dtr(False)  # socket full: queued, in order
    assert core.write_nowait(memoryview(b"\xff")) == 1
    assert sock.wire == b"\xff\xff" + bytes((255, 250, 44, 5, 9, 255, 240))
    core._sock = None


async def test_a_cancelled_send_sent_exactly_a_prefix(ser2net: PtyServer) -> None:
    # Nobody reads the pty: the pty, ser2net and the TCP buffers fill up and
    # send_all waits. Cancelled there, it has sent exactly bytes_sent bytes of
    # the data (escaping included); resuming from there loses and repeats nothing.
    data = b"\xff\x00\xffab" * 1_000_000
    async with await trioserial.open_serial_port(ser2net.url + "?ign_set_control") as port:
        # A fixed send buffer (no autotuning) keeps what the buffers hold well below len(data).
        with socket.socket(fileno=os.dup(port.fileno())) as dup:
            dup.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        with trio.CancelScope() as scope:

            async def cancel_when_blocked() -> None:
                await trio.testing.wait_all_tasks_blocked(0.05)
                scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_when_blocked)
                await port.send_all(data)
        sent = port.statistics().bytes_sent
        assert 0 < sent < len(data)
        rest = data[sent : sent + 1000]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(port.send_all, rest)
            assert await read_fd(ser2net.master, sent + len(rest)) == data[: sent + len(rest)]


async def test_poll_modem_asks_the_server_again(portmanager_loop: PortManagerServer) -> None:
    # PortManager reports the modem lines only when they change; with
    # ?poll_modem, reading them asks for a fresh report (at most every 0.3 s).
    async with await trioserial.open_serial_port(portmanager_loop.url + "?poll_modem") as port:
        await wait_modem(port, dsr=True)
        core = rfc(port)
        before = core._modem_time
        with trio.fail_after(10):
            while core._modem_time == before:
                core.modem_lines()
                with trio.move_on_after(0.1):  # the next poll is due after 0.3 s
                    await trio.lowlevel.wait_readable(port.fileno())


# ------------------------------------------------------- a scripted server


def client_requests(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete COM-PORT-OPTION requests (command, value) out of *buffer*."""
    found: list[tuple[int, bytes]] = []
    while True:
        start = buffer.find(bytes((255, 250, 44)))
        end = buffer.find(bytes((255, 240)), start)
        if start < 0 or end < 0:
            return found
        found.append(
            (buffer[start + 3], bytes(buffer[start + 4 : end]).replace(b"\xff\xff", b"\xff"))
        )
        del buffer[: end + 2]


async def test_data_right_behind_the_purge_acknowledgement_is_kept(nursery: trio.Nursery) -> None:
    # The open purges the server's buffers and drops what arrived before the
    # server confirmed it; what the device sent after the purge (in the same
    # segment as the confirmation) is the first data of the port.
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def serve() -> None:
        async with listeners[0], await listeners[0].accept() as stream:
            await stream.send_all(bytes((255, 253, 44, 255, 251, 44)) + b"stale")
            buffer = bytearray()
            while True:
                chunk = await stream.receive_some()
                if not chunk:
                    return
                buffer += chunk
                for command, value in client_requests(buffer):
                    answer = bytes((255, 250, 44, command + 100)) + value + bytes((255, 240))
                    if command == 12:  # PURGE-DATA
                        answer = b"old" + answer + b"fresh"
                    await stream.send_all(answer)

    nursery.start_soon(serve)
    async with await trioserial.open_serial_port(f"rfc2217://127.0.0.1:{port}") as serial_port:
        with trio.fail_after(10):
            assert await receive_exactly(serial_port, 5) == b"fresh"


async def test_wait_drained_sends_a_request_that_found_the_socket_full() -> None:
    # A control request made while the socket is full waits in the core; the
    # drain (which polls out_waiting) must push it out once there is room,
    # not wait forever for a read or write that never comes.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with server:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        from trioserial._rfc2217 import Options
        from trioserial._telnet import RFC2217Client

        url = "rfc2217://127.0.0.1:1?ign_set_control"
        core = RFC2217Port(client, url, trioserial.SerialSettings(), RFC2217Client(), Options(url))
        async with trioserial.AsyncSerial(core) as serial_port:
            written = 0
            while True:  # fill the socket
                try:
                    written += core.write_nowait(memoryview(b"x" * 65536))
                except BlockingIOError:
                    break
            core.set_dtr(False)
            assert core.out_waiting() > 0
            expected = written + 7  # the data, then IAC SB COM SET-CONTROL DTR-OFF IAC SE
            got = bytearray()

            async def reader() -> None:
                server_stream = trio.SocketStream(trio.socket.from_stdlib_socket(server))
                while len(got) < expected:
                    got.extend(await server_stream.receive_some())

            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(reader)
                    await serial_port.wait_drained()
            assert bytes(got[written:]) == bytes((255, 250, 44, 5, 9, 255, 240))


def test_a_trailing_slash_is_no_path() -> None:
    # pyserial ignores the path; an empty one ("HOST:PORT/") is common in URLs.
    from trioserial._rfc2217 import Options

    options = Options("rfc2217://[::1]:2217/?ign_set_control")
    assert (options.host, options.port, options.ign_set_control) == ("::1", 2217, True)

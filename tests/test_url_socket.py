"""socket://HOST:PORT against socat's pty <-> TCP bridge and against servers that misbehave."""

from __future__ import annotations

import errno
import select
import socket
import struct
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from url_servers import SocatPty, free_tcp_port, socat_tcp_pty

import trioserial
import trioserial._socket
from trioserial._control import close_drain_limit
from trioserial._netloop import Loop
from trioserial.testing import clog

__all__ = ["socat_tcp_pty"]  # the fixture, used by name below

DEADLINE = 20


async def test_data_both_ways_through_socat(socat_tcp_pty: SocatPty) -> None:
    async with await trioserial.open_serial_port(socat_tcp_pty.url) as port:
        assert port.transport == "socket"
        async with await trioserial.open_serial_port(socat_tcp_pty.device) as device:
            payload = bytes(range(256))
            await port.send_all(payload)
            got = b""
            while len(got) < len(payload):
                got += await device.receive_some()
            assert got == payload
            await device.send_all(b"\x00\xffback")
            got = b""
            while len(got) < 6:
                got += await port.receive_some()
            assert got == b"\x00\xffback"


async def test_settings_are_accepted_and_ignored(socat_tcp_pty: SocatPty) -> None:
    async with await trioserial.open_serial_port(socat_tcp_pty.url, baudrate=9600) as port:
        core = port._core
        core.apply_settings(port.settings.replace(baudrate=57600))
        assert port.settings.baudrate == 57600  # kept, never sent: raw TCP cannot
        for unsupported in (
            core.modem_lines,
            lambda: core.set_dtr(True),
            lambda: core.set_rts(True),
            lambda: core.set_break(True),
        ):
            with pytest.raises(trioserial.UnsupportedOperationError, match=r"\(socket\)"):
                unsupported()
        assert core.out_waiting() >= 0
        core.reset_output_buffer()  # accepted, as pyserial does: sent bytes cannot come back


async def test_in_waiting_and_reset_input_buffer(socat_tcp_pty: SocatPty) -> None:
    async with (
        await trioserial.open_serial_port(socat_tcp_pty.url) as port,
        await trioserial.open_serial_port(socat_tcp_pty.device) as device,
    ):
        await device.send_all(b"stale")
        await trio.lowlevel.wait_readable(port.fileno())
        assert port._core.in_waiting() > 0
        port._core.reset_input_buffer()
        await device.send_all(b"fresh")
        got = b""
        while not got.endswith(b"fresh"):
            got += await port.receive_some()
        assert got == b"fresh"


FLOOD = """
import socket
with socket.create_server(("127.0.0.1", 0)) as listener:
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    chunk = b"y" * 65536
    try:
        while True:
            conn.sendall(chunk)
    except OSError:
        pass
"""


async def test_reset_input_buffer_ends_while_the_peer_keeps_sending() -> None:
    # A server in another process that never pauses: discarding "the input so
    # far" must end (it runs on the event loop), and the stream goes on.
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", FLOOD], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(DEADLINE):
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some()
        async with await trioserial.open_serial_port(f"socket://127.0.0.1:{int(line)}") as port:
            await trio.lowlevel.wait_readable(port.fileno())
            # The core's sync call, in a worker only so that a regression
            # (a loop that never ends) fails here instead of hanging the suite.
            with trio.fail_after(DEADLINE):
                await trio.to_thread.run_sync(port._core.reset_input_buffer, abandon_on_cancel=True)
            assert set(await port.receive_some()) == {ord("y")}
    finally:
        with trio.CancelScope(shield=True):
            process.kill()
            await process.wait()


Handler = Callable[[trio.SocketStream], Awaitable[None]]
StartServer = Callable[[Handler], Awaitable[str]]


@pytest.fixture
async def tcp_server(nursery: trio.Nursery) -> StartServer:
    """Start a one-connection TCP server on 127.0.0.1 running the given handler."""

    async def start(handler: Handler) -> str:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        listener = listeners[0]
        port = listener.socket.getsockname()[1]

        async def serve_one() -> None:
            async with listener:
                stream = await listener.accept()
            await handler(stream)

        nursery.start_soon(serve_one)
        return f"socket://127.0.0.1:{port}"

    return start


async def test_server_closing_mid_stream_is_end_of_stream(
    tcp_server: StartServer,
) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.send_all(b"partial")

    url = await tcp_server(handler)
    async with await trioserial.open_serial_port(url) as port:
        got = b""
        while True:
            chunk = await port.receive_some()
            if not chunk:
                break
            got += chunk
        assert got == b"partial"
        with pytest.raises(trio.EndOfChannel):
            await port.receive()


async def test_reset_by_the_server_is_a_broken_resource(
    tcp_server: StartServer,
) -> None:
    closed = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        await stream.receive_some()  # the client is connected and talking
        # SO_LINGER 0: close() sends RST instead of FIN.
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()
        closed.set()

    url = await tcp_server(handler)
    async with await trioserial.open_serial_port(url) as port:
        await port.send_all(b"hello?")
        await closed.wait()
        with pytest.raises(trio.BrokenResourceError) as info:
            await port.receive_some()
        assert isinstance(info.value.__cause__, OSError)
        assert info.value.__cause__.errno == errno.ECONNRESET
        assert "socket://127.0.0.1" in str(info.value)


async def test_connection_refused_names_the_url() -> None:
    url = f"socket://127.0.0.1:{free_tcp_port()}"
    with pytest.raises(trioserial.PortNotFoundError, match="connection refused") as info:
        await trioserial.open_serial_port(url)
    assert url in str(info.value)
    assert info.value.port == url


async def test_unknown_host_names_the_host() -> None:
    with pytest.raises(trioserial.PortNotFoundError, match=r"unknown host 'no-such-host\.invalid'"):
        await trioserial.open_serial_port("socket://no-such-host.invalid:2000")


async def test_unreachable_host_fails_with_a_clear_error() -> None:
    # 192.0.2.0/24 is TEST-NET-1: never routed. Depending on the machine the
    # connect times out or the network is unreachable; both name the address.
    with pytest.raises(trioserial.SerialPortError, match=r"192\.0\.2\.1:9"):
        await trioserial.open_serial_port("socket://192.0.2.1:9?timeout=0.2")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("socket://localhost", "missing port"),
        ("socket://:2000", "missing host"),
        ("socket://localhost:http", "malformed port 'http'"),
        ("socket://localhost:0", "malformed port '0'"),
        ("socket://localhost:65536", "malformed port '65536'"),
        ("socket://::1:2000", "put an IPv6 address in brackets"),
        ("socket://[nonsense]:2000", "malformed IPv6 address 'nonsense'"),
        ("socket://localhost:2000?nodelay", "unknown option 'nodelay'"),
        ("socket://localhost:2000?timeout=-1", "malformed timeout '-1'"),
        ("socket://localhost:2000?timeout", "option 'timeout' .* needs a value"),
        ("sockets://localhost:2000", "unsupported URL scheme 'sockets'"),
    ],
)
async def test_malformed_urls_fail_before_any_io(url: str, message: str) -> None:
    with pytest.raises(trioserial.UnsupportedURLError, match=message):
        await trioserial.open_serial_port(url)


async def test_ipv6_literal_in_brackets(nursery: trio.Nursery) -> None:
    try:
        listeners = await trio.open_tcp_listeners(0, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    listener = listeners[0]
    port = listener.socket.getsockname()[1]

    async def serve_one() -> None:
        async with listener, await listener.accept() as stream:
            await stream.send_all(b"v6")

    nursery.start_soon(serve_one)
    async with await trioserial.open_serial_port(f"socket://[::1]:{port}") as serial_port:
        assert await serial_port.receive_some() == b"v6"


async def test_reset_during_the_open_is_a_serial_port_error_and_leaks_nothing(
    monkeypatch: pytest.MonkeyPatch, no_fd_leaks: None
) -> None:
    # The server accepts and resets at once (SO_LINGER 0), before the open has
    # finished: the open must fail with the library's error, the socket closed.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    real_connect = trioserial._socket.connect_tcp

    async def connect_then_reset(
        url: str, host: str, port: int, seconds: float, loop: Loop
    ) -> socket.socket:
        sock = await real_connect(url, host, port, seconds, loop)
        server, _ = listener.accept()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.close()
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        assert poller.poll(5000)  # the RST has arrived
        return sock

    monkeypatch.setattr(trioserial._socket, "connect_tcp", connect_then_reset)
    url = f"socket://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with pytest.raises(trioserial.SerialPortError, match="connection failed at once") as info:
            await trioserial.open_serial_port(url)
        assert info.value.errno == errno.ENOTCONN
    finally:
        listener.close()


# ------------------------------------------------------------ stream contract


async def _port_and_server_end(
    scheme: str = "socket://",
) -> tuple[trioserial.AsyncSerial, trio.SocketStream]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0] as listener:
        port_no = listener.socket.getsockname()[1]
        port = await trioserial.open_serial_port(f"{scheme}127.0.0.1:{port_no}")
        return port, await listener.accept()


async def _clogged_port_and_server_end() -> tuple[trioserial.AsyncSerial, trio.SocketStream]:
    port, server = await _port_and_server_end()
    await clog(port)
    await clog(server.socket)
    await clog(port)
    return port, server


@pytest.mark.deadline(60)  # trio.testing's full stream check: seconds of I/O
async def test_check_two_way_stream(no_fd_leaks: None) -> None:
    # TCP has what a tty lacks: the peer's graceful close delivers the data
    # sent before it, then end of stream. So the whole check holds, no xfail.
    with trio.fail_after(60):
        await trio.testing.check_two_way_stream(_port_and_server_end, _clogged_port_and_server_end)


@pytest.mark.parametrize("scheme", ["socket://", "spy://socket://"])
async def test_aclose_does_not_wait_for_a_server_that_stopped_reading(
    scheme: str, no_fd_leaks: None
) -> None:
    # The queue of a TCP socket is the kernel's, and the kernel goes on sending
    # it after close(): a graceful close has nothing to wait for. Sized at the
    # serial rate instead, megabytes of socket queue bounded the wait at
    # minutes (twice the queue's time at 115200 baud).
    port, server = await _port_and_server_end(scheme)
    async with server:
        try:
            await clog(port)  # the server reads nothing
            assert port.out_waiting > 0
            assert close_drain_limit(port._core) is None
            with trio.fail_after(DEADLINE):  # a guard against hanging, not a timing
                await port.aclose()
            assert port.closed
        finally:
            port.close()

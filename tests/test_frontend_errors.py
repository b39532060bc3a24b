"""The two front ends report the same errors, with their own library's classes.

``AsyncSerial`` (Trio) and ``AnyioSerialStream`` (anyio, both backends) drive
the same core; what a caller catches, and the message it reads, must not
depend on which one it uses. Real ptys and a real TCP connection on
127.0.0.1 (reset by the peer with ``SO_LINGER`` 0, which a pty cannot do).
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator

import anyio
import anyio.lowlevel
import pytest
import trio
import trio.testing
from anyio_helpers import BACKENDS, pty_pair, run, wait_until

import trioserial
import trioserial.anyio
from trioserial.testing import open_clogged_pty_pair, open_pty_pair

#: The device never reads, so a send of this much blocks for good.
MORE_THAN_A_PTY_HOLDS = b"x" * 4_000_000


# ------------------------------------------- a close while a task is waiting


async def test_trio_close_during_a_wait_says_the_port_was_closed() -> None:
    port, device = await open_pty_pair()
    async with device:
        messages: list[str] = []

        async def expect_closed(fn: object) -> None:
            with pytest.raises(trio.ClosedResourceError) as info:
                await fn()  # type: ignore[operator]
            messages.append(str(info.value))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(expect_closed, port.receive_some)
            nursery.start_soon(expect_closed, lambda: port.send_all(MORE_THAN_A_PTY_HOLDS))
            await trio.testing.wait_all_tasks_blocked()
            assert port.statistics().tasks_waiting_receive == 1
            assert port.statistics().tasks_waiting_send == 1
            port.close()
        # trio's own "another task closed this fd" does not say what was closed.
        assert messages == ["serial port was closed"] * 2

        port2, device2 = await open_clogged_pty_pair()
        async with device2:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(expect_closed, port2.wait_send_all_might_not_block)
                await trio.testing.wait_all_tasks_blocked()
                port2.close()
            assert messages[-1] == "serial port was closed"


@pytest.mark.parametrize("backend", BACKENDS)
def test_anyio_close_during_a_wait_says_the_port_was_closed(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, _device):
            messages: list[str] = []

            async def expect_closed(fn: object) -> None:
                with pytest.raises(anyio.ClosedResourceError) as info:
                    await fn()  # type: ignore[operator]
                messages.append(str(info.value))

            async with anyio.create_task_group() as tg:
                tg.start_soon(expect_closed, port.receive)
                tg.start_soon(expect_closed, lambda: port.send(MORE_THAN_A_PTY_HOLDS))
                await wait_until(
                    lambda: (
                        port.statistics().tasks_waiting_receive == 1
                        and port.statistics().tasks_waiting_send == 1
                    )
                )
                port.close()
            assert messages == ["serial port was closed"] * 2

    run(backend, main)


# ------------------------------- an OSError from a control call on a socket


@pytest.fixture
def reset_connection() -> Iterator[tuple[str, socket.socket]]:
    """A ``socket://`` URL whose server accepts, then resets the connection on demand."""
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield f"socket://127.0.0.1:{server.getsockname()[1]}", server
    finally:
        server.close()


def _reset(server: socket.socket) -> None:
    conn, _ = server.accept()  # the client connected already (the backlog holds it)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # an RST, not a FIN


def _check_port_error(exc: BaseException, url: str) -> None:
    assert type(exc) is trioserial.SerialPortError
    assert exc.errno == errno.ECONNRESET
    assert isinstance(exc.__cause__, ConnectionResetError)
    assert repr(url) in str(exc)


async def test_trio_control_call_wraps_a_raw_oserror(
    reset_connection: tuple[str, socket.socket],
) -> None:
    url, server = reset_connection
    async with await trioserial.open_serial_port(url) as port:
        _reset(server)
        await trio.lowlevel.wait_readable(port.fileno())  # the RST has arrived
        with pytest.raises(OSError, match="reset") as info:
            port.reset_input_buffer()
        _check_port_error(info.value, url)


@pytest.mark.parametrize("backend", BACKENDS)
def test_anyio_control_call_wraps_a_raw_oserror(
    backend: str, reset_connection: tuple[str, socket.socket]
) -> None:
    url, server = reset_connection

    async def main() -> None:
        async with await trioserial.anyio.open_serial_port(url) as port:
            _reset(server)
            await anyio.wait_readable(port.fileno())
            with pytest.raises(OSError, match="reset") as info:
                port.reset_input_buffer()
            _check_port_error(info.value, url)

    run(backend, main)


# ------------------------------------------------------------- the surface


@pytest.mark.parametrize("backend", BACKENDS)
def test_anyio_stream_names_its_transport_like_async_serial(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, _):
            assert port.transport == "tty"
        async with await trioserial.anyio.open_serial_port("loop://") as loop:
            assert loop.transport == "loop"

    run(backend, main)


async def test_async_serial_transport_for_comparison() -> None:
    port, device = await open_pty_pair()
    async with port, device:
        assert port.transport == "tty"

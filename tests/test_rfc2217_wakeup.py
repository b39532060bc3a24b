"""A control call that reads input off an rfc2217:// socket wakes the blocked receiver.

RFC 2217 carries modem-state notifications in the data stream, so
``modem_lines``/``in_waiting`` must read the socket to find them, and data
that was queued before them moves into the core's own buffer. A receiver
already waiting for the socket to become readable would then sleep with
data in hand. ser2net in front of a pty; the test blocks in ``poll`` on
purpose so that no task runs between the data's arrival and the control
call (the interleaving a busy event loop produces).
"""

from __future__ import annotations

import os
import select
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import trio
import trio.testing
from anyio_helpers import BACKENDS, run, wait_until
from url_servers import PortManagerServer, PtyServer, portmanager_loop, pty_fds, ser2net

import trioserial
import trioserial.anyio

__all__ = ["portmanager_loop", "pty_fds", "ser2net"]  # fixtures used by name


@pytest.mark.parametrize("front_end", ["trio", "anyio"])
async def test_control_call_that_buffers_input_wakes_the_receiver(
    ser2net: PtyServer, front_end: str
) -> None:
    """The anyio front end runs here on anyio's trio backend (the same code on asyncio)."""
    url = ser2net.url + "?ign_set_control"
    if front_end == "trio":
        port: Any = await trioserial.open_serial_port(url)
    else:
        port = await trioserial.anyio.open_serial_port(url)
    async with port:
        received: list[bytes] = []
        done = trio.Event()

        async def receiver() -> None:
            if front_end == "trio":
                received.append(await port.receive_some())
            else:
                received.append(await port.receive())
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver)
            await trio.testing.wait_all_tasks_blocked()
            assert port.statistics().tasks_waiting_receive == 1
            os.write(ser2net.master, b"hello")
            poller = select.poll()
            poller.register(port.fileno(), select.POLLIN)
            assert poller.poll(10_000), "no data from ser2net"
            assert port.in_waiting > 0  # read off the socket into the core's buffer
            with trio.move_on_after(10):  # only a failure waits this long
                await done.wait()
            nursery.cancel_scope.cancel()
        assert received, "the receiver slept with the data in the core's buffer"
        assert b"hello".startswith(received[0])


@pytest.mark.parametrize("wrapper", ["", "spy://"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_anyio_receiver_is_woken_on_each_backend_and_behind_spy(
    portmanager_loop: PortManagerServer, backend: str, wrapper: str
) -> None:
    """The same wake-up on anyio's asyncio backend (whose receive yields
    before its first read) and through a ``spy://`` wrapper (which must pass
    on that its port buffers input: the front end only makes the wait
    interruptible for such a core). pyserial's PortManager over ``loop://``
    serves the data."""

    async def main() -> None:
        port = await trioserial.anyio.open_serial_port(wrapper + portmanager_loop.url)
        async with port:
            received: list[bytes] = []
            done = anyio.Event()

            async def receiver() -> None:
                received.append(await port.receive())
                done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(receiver)
                await wait_until(lambda: port.statistics().tasks_waiting_receive == 1)
                # Into the server's loop:// directly: port.send would be a
                # schedule point, where the receiver could take the echo.
                portmanager_loop.serial.write(b"hello")
                # Block the loop until the echo is in the core's own buffer,
                # so the receiver never sees the socket readable.
                poller = select.poll()
                poller.register(port.fileno(), select.POLLIN)
                while port.in_waiting == 0:
                    assert poller.poll(10_000), "no echo from the server"
                with anyio.move_on_after(10):  # only a failure waits this long
                    await done.wait()
                tg.cancel_scope.cancel()
            assert received, "the receiver slept with the data in the core's buffer"
            assert b"hello".startswith(received[0])

    run(backend, main)

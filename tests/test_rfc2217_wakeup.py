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

import pytest
import trio
import trio.testing
from url_servers import PtyServer, pty_fds, ser2net

import trioserial
import trioserial.anyio

__all__ = ["pty_fds", "ser2net"]  # fixtures used by name


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

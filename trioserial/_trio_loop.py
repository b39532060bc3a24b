"""Trio's table of loop primitives (layer 2).

Never imports :mod:`anyio`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Final

import trio

from ._core import PortCore
from ._netloop import AddrInfo, Loop
from ._surface import LoopPrimitives

__all__ = ["TRIO_LOOP", "TRIO_PRIMITIVES"]


async def _wait_readable_until(fd: int, deadline: float) -> bool:
    with trio.move_on_at(deadline):
        await trio.lowlevel.wait_readable(fd)
        return True
    return False


async def _wait_writable_until(fd: int, deadline: float) -> bool:
    with trio.move_on_at(deadline):
        await trio.lowlevel.wait_writable(fd)
        return True
    return False


async def _getaddrinfo(host: str, port: int) -> Sequence[AddrInfo]:
    return await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


#: Trio's loop primitives, for the network opens (see ``_netloop``).
TRIO_LOOP: Final = Loop(
    current_time=trio.current_time,
    wait_readable=_wait_readable_until,
    wait_writable=_wait_writable_until,
    getaddrinfo=_getaddrinfo,
    sleep=trio.sleep,
)


async def _open_in_thread(open_: Callable[[], PortCore]) -> PortCore:
    """Run *open_* in a worker thread to its end; if a cancellation came
    meanwhile, close the port again and raise it (Trio delivers none during
    :func:`trio.to_thread.run_sync`)."""
    # The core comes back through a box, not as the thread's return value:
    # trio's worker thread keeps its last result alive until its next job, and
    # a port the caller drops must be closable by the garbage collector.
    box: list[PortCore] = []
    await trio.to_thread.run_sync(lambda: box.append(open_()))
    core = box.pop()
    try:
        await trio.lowlevel.checkpoint_if_cancelled()
    except BaseException:
        core.close()  # cancelled while the thread opened it: not the caller's to close
        raise
    return core


#: Trio's loop primitives: what the control surface and the Expect loop run on.
TRIO_PRIMITIVES: Final = LoopPrimitives(
    closed_error=trio.ClosedResourceError,
    busy_error=trio.BusyResourceError,
    broken_error=trio.BrokenResourceError,
    checkpoint=trio.lowlevel.checkpoint,
    checkpoint_if_cancelled=trio.lowlevel.checkpoint_if_cancelled,
    cancel_shielded_checkpoint=trio.lowlevel.cancel_shielded_checkpoint,
    notify_closing=trio.lowlevel.notify_closing,
    move_on_after=trio.move_on_after,
    move_on_at=trio.move_on_at,
    current_time=trio.current_time,
    event=trio.Event,
    shielded=lambda: trio.CancelScope(shield=True),
    network=TRIO_LOOP,
    open_in_thread=_open_in_thread,
)

"""anyio's table of loop primitives (layer 2).

Never imports :mod:`trio`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Final

import anyio
import anyio.lowlevel
import anyio.to_thread
import sniffio

from ._core import PortCore
from ._netloop import AddrInfo, Loop
from ._surface import LoopPrimitives

__all__ = ["ANYIO_LOOP", "ANYIO_PRIMITIVES"]


async def _wait_readable_until(fd: int, deadline: float) -> bool:
    with anyio.move_on_after(deadline - anyio.current_time()):
        await anyio.wait_readable(fd)
        return True
    return False


async def _wait_writable_until(fd: int, deadline: float) -> bool:
    with anyio.move_on_after(deadline - anyio.current_time()):
        await anyio.wait_writable(fd)
        return True
    return False


async def _getaddrinfo(host: str, port: int) -> Sequence[AddrInfo]:
    return await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)


#: anyio's loop primitives, for the network opens (see ``_netloop``).
ANYIO_LOOP: Final = Loop(
    current_time=anyio.current_time,
    wait_readable=_wait_readable_until,
    wait_writable=_wait_writable_until,
    getaddrinfo=_getaddrinfo,
    sleep=anyio.sleep,
)


async def _open_in_thread(open_: Callable[[], PortCore]) -> PortCore:
    """Run *open_* in a worker thread, to its end whatever cancellation comes.

    On Trio nothing gets through the shield of :func:`anyio.to_thread.run_sync`.
    On asyncio a native cancellation (``task.cancel()``, ``asyncio.timeout``)
    does, and the thread would go on opening (and locking) the port after the
    caller was told the open was cancelled: so there the wait for the thread
    is repeated until it has finished, the port is closed, and the
    cancellation is raised then.
    """
    box: list[PortCore] = []  # not the thread's result: workers keep theirs alive
    if sniffio.current_async_library() != "asyncio":
        await anyio.to_thread.run_sync(lambda: box.append(open_()))
        return box.pop()
    import asyncio  # loaded already (it runs this), and not worth loading on trio

    future = asyncio.get_running_loop().run_in_executor(None, lambda: box.append(open_()))
    cancelled: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True):
        while True:
            try:
                await asyncio.shield(future)
                break
            except asyncio.CancelledError as exc:
                cancelled = cancelled or exc
                if future.done():
                    break
    if cancelled is None:
        future.result()
        return box.pop()
    if box:
        box.pop().close()
    raise cancelled


async def _open_in_thread_checked(open_: Callable[[], PortCore]) -> PortCore:
    """:func:`_open_in_thread`, then close the port again if a cancellation
    (of anyio's scopes) came meanwhile and raise it."""
    core = await _open_in_thread(open_)
    try:
        await anyio.lowlevel.checkpoint_if_cancelled()
    except BaseException:
        core.close()  # cancelled while the thread opened it: not the caller's to close
        raise
    return core


def _move_on_at(deadline: float) -> anyio.CancelScope:
    return anyio.CancelScope(deadline=deadline)


#: anyio's loop primitives: what the control surface and the Expect loop run
#: on (anyio's own names, which are Trio's but for ``notify_closing``).
ANYIO_PRIMITIVES: Final = LoopPrimitives(
    closed_error=anyio.ClosedResourceError,
    busy_error=anyio.BusyResourceError,
    broken_error=anyio.BrokenResourceError,
    checkpoint=anyio.lowlevel.checkpoint,
    checkpoint_if_cancelled=anyio.lowlevel.checkpoint_if_cancelled,
    cancel_shielded_checkpoint=anyio.lowlevel.cancel_shielded_checkpoint,
    notify_closing=anyio.notify_closing,
    move_on_after=anyio.move_on_after,
    move_on_at=_move_on_at,
    current_time=anyio.current_time,
    event=anyio.Event,
    shielded=lambda: anyio.CancelScope(shield=True),
    network=ANYIO_LOOP,
    open_in_thread=_open_in_thread_checked,
)

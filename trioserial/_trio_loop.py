"""Trio's loop primitives for the network opens, and the Trio front end's open (layer 2).

Never imports :mod:`anyio`.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Final

import trio

from ._core import PortCore
from ._netloop import AddrInfo, Loop
from ._open import open_core, open_core_on_loop, opens_on_loop
from ._options import OpenOptions
from ._settings import SerialSettings

__all__ = ["TRIO_LOOP", "open_core_trio"]


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


async def open_core_trio(url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
    """Open the checked *url*: a network port on the loop, anything else in a thread.

    Cancellation: a network open ends at once, its socket closed. A thread's
    open runs to its end; if a cancellation came meanwhile, the port is
    closed again before it is raised.
    """
    if opens_on_loop(url):
        return await open_core_on_loop(url, settings, options, TRIO_LOOP)
    # The core comes back through a box, not as the thread's return value:
    # trio's worker thread keeps its last result alive until its next job, and
    # a port the caller drops must be closable by the garbage collector.
    box: list[PortCore] = []
    await trio.to_thread.run_sync(lambda: box.append(open_core(url, settings, options)))
    core = box.pop()
    try:
        await trio.lowlevel.checkpoint_if_cancelled()
    except BaseException:
        core.close()  # cancelled while the thread opened it: not the caller's to close
        raise
    return core

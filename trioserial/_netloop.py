"""Network opens written once, for the event loops and for blocking callers (layer 1).

Connecting and negotiating (``socket://``, ``rfc2217://``) are async
functions that wait only through a :class:`Loop`, a small table of loop
primitives. Each front end passes its own (:mod:`trio`'s, :mod:`anyio`'s),
so an open runs on the event loop, on a non-blocking socket, and a
cancellation ends it at once and closes the socket. Blocking callers
(:func:`~trioserial._open.open_core`, used by threads) pass
:data:`BLOCKING`, whose waits are ``poll(2)`` calls: an opener driven with
it never suspends, and :func:`run_blocking` runs it to the end in one step.

This module imports neither trio nor anyio (``tests/test_layers.py``).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, TypeVar

import attrs

from ._core import PortCore

__all__ = [
    "BLOCKING",
    "AddrInfo",
    "Loop",
    "recv_some",
    "run_blocking",
    "send_all",
    "wait_settings_applied",
]

T = TypeVar("T")

#: What :func:`socket.getaddrinfo` returns, one entry per address.
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]


@attrs.frozen
class Loop:
    """The loop primitives a network open needs. Deadlines are on :attr:`current_time`'s clock.

    Attributes:
      current_time: the loop's clock, in seconds.
      wait_readable: ``(fd, deadline) -> ready``: wait until *fd* is
        readable (``True``) or the deadline passes (``False``). A checkpoint.
      wait_writable: the same for writability.
      getaddrinfo: ``(host, port) -> addresses`` for a TCP connection
        (:func:`socket.getaddrinfo` with ``type=SOCK_STREAM``); cancellable.
      sleep: ``(seconds)``, a checkpoint.
    """

    current_time: Callable[[], float]
    wait_readable: Callable[[int, float], Awaitable[bool]]
    wait_writable: Callable[[int, float], Awaitable[bool]]
    getaddrinfo: Callable[[str, int], Awaitable[Sequence[AddrInfo]]]
    sleep: Callable[[float], Awaitable[None]]


def _blocking_wait(events: int) -> Callable[[int, float], Awaitable[bool]]:
    async def wait(fd: int, deadline: float) -> bool:
        poller = select.poll()
        poller.register(fd, events)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if poller.poll(left * 1000 + 1):  # error and hangup count as ready
                return True

    return wait


async def _blocking_getaddrinfo(host: str, port: int) -> Sequence[AddrInfo]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


async def _blocking_sleep(seconds: float) -> None:
    time.sleep(seconds)  # noqa: ASYNC251 - BLOCKING blocks by design (run_blocking)


#: Blocking waits, for :func:`run_blocking` (in a worker thread, never on a loop).
BLOCKING: Final = Loop(
    current_time=time.monotonic,
    wait_readable=_blocking_wait(select.POLLIN),
    wait_writable=_blocking_wait(select.POLLOUT),
    getaddrinfo=_blocking_getaddrinfo,
    sleep=_blocking_sleep,
)


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro*, which waits only through :data:`BLOCKING`, to its end. Blocking."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise RuntimeError("a blocking open suspended: it waited on something other than BLOCKING")


async def send_all(sock: socket.socket, data: bytes, loop: Loop, deadline: float) -> bool:
    """Send all of *data* on the non-blocking *sock*; ``False`` if the deadline passed first."""
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
        except BlockingIOError:
            if not await loop.wait_writable(sock.fileno(), deadline):
                return False
            continue
        view = view[n:]
    return True


async def recv_some(sock: socket.socket, size: int, loop: Loop, deadline: float) -> bytes | None:
    """Wait for, then read, up to *size* bytes; ``None`` if the deadline passed first.

    It waits before every read, so a peer that sends without pause still
    lets the loop run other tasks between reads.
    """
    while True:
        if not await loop.wait_readable(sock.fileno(), deadline):
            return None
        try:
            return sock.recv(size)
        except BlockingIOError:
            continue


#: The first and the longest pause between looks at a settings change's answer.
SETTINGS_POLL: Final = (0.001, 0.02)


async def wait_settings_applied(core: PortCore, loop: Loop) -> None:
    """Wait until *core* reports the last :meth:`~PortCore.apply_settings` in force.

    It looks at the core after pauses that grow from 1 ms to 20 ms, instead
    of waiting on the fd: a receive or send of another task may be waiting
    on it, and Trio and anyio allow one waiter per fd and direction. (A
    receiver that reads the answer first hands it to the core, which this
    sees at its next look.)

    Raises what :meth:`~PortCore.settings_pending` raises (a rejection, a timeout).
    """
    pause, longest = SETTINGS_POLL
    while (left := core.settings_pending()) is not None:
        await loop.sleep(min(pause, left))
        pause = min(pause * 2, longest)

"""Pty pairs for the anyio front end, usable on both anyio backends.

pytest-trio runs with ``trio_mode = true``, which claims every ``async def``
test, including those marked ``pytest.mark.anyio`` (they would run on trio
whatever ``anyio_backend`` says: checked). So the anyio tests are plain sync
functions, parametrized over :data:`BACKENDS`, that call :func:`anyio.run`.
"""

from __future__ import annotations

import fcntl
import os
import sys
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel

from trioserial.anyio import AnyioSerialStream, open_serial_port
from trioserial.testing._pty import _PtyMasterCore

BACKENDS = ["asyncio", "trio"]


def run(backend: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    return anyio.run(fn, *args, backend=backend)


@asynccontextmanager
async def pty_pair(**settings: Any) -> AsyncIterator[tuple[AnyioSerialStream, AnyioSerialStream]]:
    """``(port, device)``: the port opened by path as users do; the device on the pty master.

    The device end drives the same master-side core as
    :class:`trioserial.testing.PtyDevice` (reads give end of stream once the
    port is closed, writes fail), through the anyio front end itself.
    """
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        port = await open_serial_port(path, **settings)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    device = AnyioSerialStream(_PtyMasterCore(master, f"{path} (device side)"))
    async with port, device:
        yield port, device


async def clog(stream: AnyioSerialStream) -> None:
    """Fill *stream*'s outgoing pty buffer until sending would block (as
    :func:`trioserial.testing.clog` does: a pty moves data in a kernel worker,
    so keep writing until no room appears for 20 ms)."""
    fd = stream.fileno()
    chunk = b"\xaa" * 4096
    while True:
        try:
            while True:
                os.write(fd, chunk)
        except BlockingIOError:
            pass
        with anyio.move_on_after(0.02) as scope:
            await anyio.wait_writable(fd)
        if scope.cancelled_caught:
            return


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Yield to other tasks until *predicate* holds (no timers involved)."""
    while not predicate():
        await anyio.lowlevel.checkpoint()


def pending(stream: AnyioSerialStream) -> int:
    """Bytes in *stream*'s kernel input buffer (``FIONREAD``, which a pty answers)."""
    buf = bytearray(4)
    fcntl.ioctl(stream.fileno(), termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder)

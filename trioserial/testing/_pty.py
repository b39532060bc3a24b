"""Pty pairs: a real tty for our port, and a fake-device end on the master."""

from __future__ import annotations

import errno
import os
from typing import Any, Protocol, final

import trio

from .._core import PortCore
from .._port import is_hung_up
from .._settings import SerialSettings, SerialStatistics
from .._stream import AsyncSerial, open_serial_port

__all__ = ["PtyDevice", "clog", "open_clogged_pty_pair", "open_pty_pair"]


class _PtyMasterCore(PortCore):
    """The master side of a pty, where a fake device sits.

    The master sees the slave's hangup differently from the slave: reads fail
    with ``EIO`` (we report end of stream, ``b""``), while writes succeed and
    the bytes vanish, so a write first checks for the hangup and fails with
    ``EIO`` (a :exc:`trio.BrokenResourceError` for the caller).
    """

    transport = "pty-master"

    def __init__(self, fd: int, name: str) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self.name = name
        self.settings = SerialSettings(exclusive=False)

    def fileno(self) -> int:
        return self._fd

    def read_nowait(self, max_bytes: int) -> bytes:
        try:
            return os.read(self._fd, max_bytes)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""
            raise

    def write_nowait(self, data: memoryview) -> int:
        if self._fd != -1 and is_hung_up(self._fd):
            raise OSError(errno.EIO, "the serial port side of the pty is closed")
        return os.write(self._fd, data)

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd != -1:
            os.close(fd)

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) != -1:
            os.close(self._fd)
            self._fd = -1


@final
class PtyDevice(trio.abc.Stream):
    """The device end of a pty pair: what a fake device reads and writes.

    A plain :class:`trio.abc.Stream` with the same semantics as
    :class:`~trioserial.AsyncSerial` (it runs on the same I/O loop):
    ``receive_some`` returns ``b""`` once the port side is closed, and
    ``send_all`` raises :exc:`trio.BrokenResourceError` then. Closing it
    (:meth:`hang_up` or :meth:`aclose`) is what a USB unplug looks like to
    the port: the port's reads return ``b""`` and its writes fail.
    """

    def __init__(self, master_fd: int, path: str) -> None:
        self._io = AsyncSerial(_PtyMasterCore(master_fd, f"{path} (device side)"))
        #: The pty slave's path, which the code under test opens.
        self.path = path

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send *data* to the port, as :meth:`trioserial.AsyncSerial.send_all` does."""
        await self._io.send_all(data)

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """The same as :meth:`send_all`."""
        await self._io.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until there is room to send."""
        await self._io.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """What the port sent; ``b""`` once the port side is closed."""
        return await self._io.receive_some(max_bytes)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Like :meth:`receive_some`, raising :exc:`trio.EndOfChannel` instead of ``b""``."""
        return await self._io.receive(max_bytes)

    def hang_up(self) -> None:
        """Close the device end now, as an unplugged adapter would."""
        self._io.close()

    async def aclose(self) -> None:
        """Close the device end (the port sees a hangup)."""
        await self._io.aclose()

    def statistics(self) -> SerialStatistics:
        """Counters, as :meth:`trioserial.AsyncSerial.statistics`."""
        return self._io.statistics()

    def fileno(self) -> int:
        """The master fd, or ``-1`` once closed."""
        return self._io.fileno()


async def open_pty_pair(**settings: Any) -> tuple[AsyncSerial, PtyDevice]:
    """Open a pty and return ``(port, device)``.

    ``port`` is a real :class:`~trioserial.AsyncSerial`, opened by path
    through :func:`~trioserial.open_serial_port` with *settings*; ``device``
    is a :class:`PtyDevice` on the master side. A pty is not a UART: there is
    no baud-rate pacing, modem-line ioctls fail, and break does nothing, so
    code that depends on those needs other tests. A pty has no wire for
    parity or data bits: those in *settings* are taken as asked and not
    applied (bytes pass as they are).
    """
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        port = await open_serial_port(path, **settings)
    except BaseException:
        os.close(master)
        raise
    finally:
        # Our port holds its own fd on the slave; the pty lives as long as it does.
        os.close(slave)
    return port, PtyDevice(master, path)


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


async def clog(stream: _HasFileno, *, quiet_period: float = 0.05) -> None:
    """Fill *stream*'s outgoing buffer until sending would block.

    For a pty end (:class:`~trioserial.AsyncSerial`,
    :class:`~trioserial.testing.PtyDevice`) or anything else with a
    non-blocking ``fileno()``, such as a socket. A pty moves data between its
    two buffers in a kernel worker, and TCP grows its buffers as they fill,
    so one ``EAGAIN`` is not the end: keep writing until no room has
    appeared for two *quiet_period* windows in a row (the worker can be late
    on a busy machine).
    """
    fd = stream.fileno()
    chunk = b"\xaa" * 4096
    quiet = 0
    while quiet < 2:
        try:
            while True:
                os.write(fd, chunk)
                quiet = 0
        except BlockingIOError:
            pass
        with trio.move_on_after(quiet_period) as scope:
            await trio.lowlevel.wait_writable(fd)
        if scope.cancelled_caught:
            quiet += 1


async def open_clogged_pty_pair(**settings: Any) -> tuple[AsyncSerial, PtyDevice]:
    """:func:`open_pty_pair` with both directions filled: no send can proceed
    until the other side reads."""
    port, device = await open_pty_pair(**settings)
    await clog(port)
    await clog(device)
    await clog(port)  # in case filling the other direction freed room here
    return port, device

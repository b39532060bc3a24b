"""A Jumpstarter serial driver on trioserial (layer 3, optional extra ``trioserial[jumpstarter]``).

:class:`PySerial` is a drop-in for ``jumpstarter_driver_pyserial.driver.PySerial``:
the same fields and defaults, the same exported methods and the same client
(``jumpstarter_driver_pyserial.client.PySerialClient``), so an exporter
configuration changes only its ``type:``, and ``j serial``, pexpect and
existing client code keep working. Underneath, each connection is a
:class:`trioserial.anyio.AnyioSerialStream`: non-blocking syscalls on the
exporter's event loop, no reader threads.

Jumpstarter exporters run on anyio's asyncio backend, where the exporter
paths are tested; the driver itself uses only anyio's portable API.
``trioserial`` itself never imports this module, so it imports without
Jumpstarter installed.
"""

from __future__ import annotations

import abc
import errno
import functools
import math
import os
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeVar

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel

try:
    from jumpstarter.driver import Driver
    from jumpstarter.driver import export as _export
    from jumpstarter.driver import exportstream as _exportstream
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "trioserial.jumpstarter needs Jumpstarter: pip install 'trioserial[jumpstarter]'"
    ) from exc

from ._errors import SerialPortError, open_error
from ._open import check_url, open_core
from ._options import OpenOptions
from ._settings import SerialSettings
from ._util import check_bool
from .anyio import AnyioSerialStream, open_serial_port

__all__ = ["LOOP", "PySerial"]

_F = TypeVar("_F", bound=Callable[..., Any])
# Jumpstarter's decorators only mark the function; give them their types.
export: Callable[[_F], _F] = _export
exportstream: Callable[[_F], _F] = _exportstream

#: The URL of an in-memory echo port: trioserial's own ``loop://``, where what
#: is sent comes back, one chunk per send.
LOOP: Final = "loop://"


def _check_present(url: str, baudrate: int) -> None:
    """Raise the :class:`~trioserial.SerialPortError` (a ``serial.SerialException``)
    that opening *url* would raise, if it is clearly missing.

    A device path is checked with ``stat`` and ``access`` and **not opened**:
    an open raises DTR and a close with HUPCL drops it, which resets many
    boards, and starting an exporter should not do that. A URL is opened and
    closed again (there is no other way to see a TCP port).
    """
    url = check_url(url)
    if "://" in url:
        open_core(url, SerialSettings(baudrate=baudrate, exclusive=False)).close()
        return
    try:
        os.stat(url)
    except OSError as exc:
        raise open_error(url, exc) from exc
    if not os.access(url, os.R_OK | os.W_OK):
        raise open_error(url, PermissionError(errno.EACCES, os.strerror(errno.EACCES)))


class _Connection(anyio.abc.ByteStream):
    """One live ``connect()`` stream, closable from any thread by the driver.

    The driver's exported ``close()`` runs in a worker thread (and again in
    the event loop's thread when a lease ends). Closing must wake tasks
    blocked on the fd, which only the loop's thread may do, so a close from
    another thread is run there with :func:`anyio.from_thread.run_sync` and
    waited for: when it returns, the fd is closed.
    """

    def __init__(self, cps: float | None) -> None:
        self._interval = 1.0 / cps if cps else 0.0
        self._next_send = -math.inf
        self._token = anyio.lowlevel.current_token()
        self._thread = threading.get_ident()
        #: Closed by the driver's close(): receive then reports a clean end of stream.
        self.forced = False

    def close_from_any_thread(self) -> None:
        if threading.get_ident() == self._thread:
            self.force_close()
            return
        try:
            anyio.from_thread.run_sync(self.force_close, token=self._token)
        except anyio.RunFinishedError:
            # The loop is gone, so nobody can be waiting on the fd.
            self.abandon()

    @abc.abstractmethod
    def force_close(self) -> None:
        """Close now, in the event loop's thread; receive then ends cleanly."""

    def abandon(self) -> None:
        """Release resources without the event loop (it has finished)."""

    @abc.abstractmethod
    async def _send_raw(self, data: bytes) -> None:
        """Send *data* now, unthrottled."""

    @abc.abstractmethod
    async def _pause(self, seconds: float) -> None:
        """Sleep between throttled bytes; a close ends it at once (``ClosedResourceError``)."""

    async def send(self, item: bytes) -> None:
        """Send *item*; with ``cps`` set, one byte at a time, ``1 / cps`` seconds apart.

        The pacing runs across calls too (a byte never follows the previous
        send's last byte sooner than ``1 / cps``). Cancellation: a prefix of
        *item* was sent, the rest was not. A close (the driver's or this
        stream's) wakes a send waiting between bytes at once, with
        :exc:`anyio.ClosedResourceError`.
        """
        if not self._interval or not item:
            await self._send_raw(item)
            return
        for i in range(len(item)):
            delay = self._next_send - anyio.current_time()
            if delay > 0:
                await self._pause(delay)
            await self._send_raw(item[i : i + 1])
            self._next_send = anyio.current_time() + self._interval


class _SerialConnection(_Connection):
    """A serial port with the exceptions Jumpstarter's stream forwarding needs.

    From :meth:`receive`: a device hangup is an :exc:`OSError` (a
    :class:`~trioserial.SerialPortError`), which ends the client's session;
    Jumpstarter would swallow an :exc:`anyio.BrokenResourceError` and leave
    the client waiting forever. After the driver's ``close()`` it is
    :exc:`anyio.EndOfStream`, a clean end.
    """

    def __init__(self, port: AnyioSerialStream, cps: float | None) -> None:
        super().__init__(cps)
        self.port = port

    def _failure(self, exc: anyio.BrokenResourceError) -> SerialPortError:
        cause = exc.__cause__
        code = cause.errno if isinstance(cause, OSError) else None
        return SerialPortError(str(exc), port=self.port.port, errno=code)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Up to *max_bytes* bytes from the device.

        Raises:
          anyio.EndOfStream: the driver's ``close()`` closed this connection.
          trioserial.SerialPortError: the device hung up or the OS reported an
            error (an :exc:`OSError`).
        """
        try:
            return await self.port.receive(max_bytes)
        except anyio.EndOfStream:
            if self.forced:
                raise
            raise SerialPortError(
                f"serial port {self.port.port!r} hung up (device disconnected)",
                port=self.port.port,
                errno=errno.EIO,
            ) from None
        except anyio.ClosedResourceError:
            if self.forced:
                raise anyio.EndOfStream from None
            raise
        except anyio.BrokenResourceError as exc:
            raise self._failure(exc) from exc.__cause__

    async def _send_raw(self, data: bytes) -> None:
        try:
            await self.port.send(data)
        except anyio.BrokenResourceError as exc:
            raise self._failure(exc) from exc.__cause__

    async def _pause(self, seconds: float) -> None:
        # With a slow cps the next byte can be seconds away: close() must not wait for it.
        await self.port._sleep_while_open(seconds)

    async def send_eof(self) -> None:
        """Stop sending on this connection. The port stays open (a client left)."""
        if self.port.closed:
            await anyio.lowlevel.checkpoint()
            return
        try:
            await self.port.send_eof()
        except anyio.ClosedResourceError:
            if not self.port.closed:
                raise
            # Closed during send_eof's checkpoint (the lease ended as the client
            # left): the same as closed before, no error.

    async def aclose(self) -> None:
        await self.port.aclose()

    def force_close(self) -> None:
        self.forced = True
        self.port.close()

    def abandon(self) -> None:
        self.forced = True
        self.port._core.close()  # no loop left to notify; nobody waits on the fd

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.port.extra_attributes


@dataclass(kw_only=True)
class PySerial(Driver):
    """A serial port exported by a Jumpstarter exporter; a drop-in for
    ``jumpstarter_driver_pyserial.driver.PySerial``.

    In the exporter configuration only ``type:`` changes::

        export:
          console:
            type: trioserial.jumpstarter.PySerial
            config:
              url: /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K0ABC-if00-port0
              baudrate: 115200

    Attributes:
      url: a device path, or ``loop://`` for an in-memory echo.
      baudrate: bits per second.
      check_present: check at construction that the port exists (raising
        :class:`~trioserial.PortNotFoundError`, a ``serial.SerialException``);
        a device path is not opened for this, so no DTR pulse resets the board.
      cps: throttle sends to this many characters per second (slow consoles,
        U-Boot prompts); ``None`` or 0 sends at full speed.
      disable_hupcl: clear ``HUPCL`` after opening, so that closing the port
        does not drop DTR (and reset boards wired to it).

    Each ``connect()`` opens the port without an exclusive lock, as the
    original driver does, so two clients (a console and a pexpect script)
    can connect at once.
    """

    #: What kind of driver this is, for tools that group drivers by kind.
    driver_type: ClassVar[str] = "serial"

    url: str
    baudrate: int = field(default=115200)
    check_present: bool = field(default=True)
    cps: float | None = field(default=None)
    disable_hupcl: bool = field(default=False)
    _connections: Any = field(default_factory=set, init=False, repr=False)
    _lock: Any = field(default_factory=threading.Lock, init=False, repr=False)
    _closes: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if hasattr(super(), "__post_init__"):
            super().__post_init__()  # type: ignore[no-untyped-call]
        if self.cps is not None and not self.cps >= 0:
            raise ValueError(f"cps must be characters per second >= 0 or None, got {self.cps!r}")
        if self.check_present and self.url != LOOP:
            _check_present(self.url, self.baudrate)

    @classmethod
    def client(cls) -> str:
        return "jumpstarter_driver_pyserial.client.PySerialClient"

    # ------------------------------------------------------------- streams

    async def open_port(self) -> AnyioSerialStream:
        """Open the port for one connection (a seam a subclass may override).

        With ``disable_hupcl``, ``HUPCL`` is cleared in termios right after
        the open (:func:`trioserial.anyio.open_serial_port`'s ``hupcl=False``).
        """
        if self.disable_hupcl and "://" in self.url:
            self.logger.warning("disable_hupcl has no effect on %s (not a tty)", self.url)
        return await open_serial_port(
            self.url, baudrate=self.baudrate, exclusive=False, hupcl=self._hupcl()
        )

    def _hupcl(self) -> bool | None:
        """What every open (a connection's, or a brief one) does with ``HUPCL``."""
        return False if self.disable_hupcl and "://" not in self.url else None

    @exportstream
    @asynccontextmanager
    async def connect(self) -> AsyncIterator[anyio.abc.ByteStream]:
        """A byte stream to the port; ``loop://`` echoes.

        The port is opened for this connection and closed when it ends or
        when :meth:`close` is called. No task group or cancel scope spans the
        ``yield``.
        """
        cps_info = f", cps: {self.cps}" if self.cps is not None else ""
        self.logger.info("connecting to %s, baudrate: %d%s", self.url, self.baudrate, cps_info)
        with self._lock:
            closes = self._closes
        port = await self.open_port()
        connection = _SerialConnection(port, self.cps)
        with self._lock:
            self._connections.add(connection)
            closed_meanwhile = self._closes != closes
        if closed_meanwhile:
            connection.force_close()  # that close() covers this connection too
        try:
            async with connection:
                yield connection
        finally:
            with self._lock:
                self._connections.discard(connection)
        self.logger.info("disconnected from %s", self.url)

    # -------------------------------------------------------------- control

    def _live(self) -> list[_Connection]:
        with self._lock:
            return list(self._connections)

    @export
    def close(self) -> None:
        """Close every active connection, from any thread.

        Each connection's clients see a clean end of stream. When this
        returns, the port's file descriptors are closed, so another program
        (a flasher) can open the port at once, except that an open already
        running in a worker thread cannot be stopped: that connection is
        closed as soon as its open returns and its clients see end of stream.
        Safe to call with no connection; connections made afterwards work as
        usual.
        """
        with self._lock:
            self._closes += 1
        for connection in self._live():
            connection.close_from_any_thread()
        super().close()  # type: ignore[no-untyped-call]

    def _set_line(self, line: str, value: bool) -> None:
        check_bool(line, value)
        live = [c for c in self._live() if isinstance(c, _SerialConnection)]
        if live:
            for connection in live:
                _run_on_loop(connection, functools.partial(setattr, connection.port, line, value))
            return
        # No connection: set the line through a short-lived handle, as the
        # original driver always does; with disable_hupcl its close keeps the line.
        core = open_core(
            self.url,
            SerialSettings(baudrate=self.baudrate, exclusive=False),
            OpenOptions(hupcl=self._hupcl()),
        )
        try:
            getattr(core, f"set_{line}")(value)
        finally:
            core.close()

    @export
    def set_dtr(self, value: bool) -> None:
        """Drive DTR on the live connection(s), or on a short-lived handle if none."""
        self._set_line("dtr", value)

    @export
    def set_rts(self, value: bool) -> None:
        """Drive RTS on the live connection(s), or on a short-lived handle if none."""
        self._set_line("rts", value)


def _run_on_loop(connection: _Connection, fn: Callable[[], object]) -> None:
    """Run *fn* in *connection*'s event-loop thread (so it cannot race a close)."""
    if threading.get_ident() == connection._thread:
        fn()
    else:
        anyio.from_thread.run_sync(fn, token=connection._token)

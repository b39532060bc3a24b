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

import contextlib
import errno
import functools
import logging
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

from ._core import PortCore
from ._errors import SerialPortError
from ._open import UnopenedCore, check_url, open_core
from ._options import OpenOptions
from ._pacing import Pacer, check_cps
from ._presence import check_present
from ._settings import SerialSettings
from ._util import check_bool
from .anyio import AnyioSerialStream, open_serial_port

__all__ = ["LOOP", "PySerial"]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")
# Jumpstarter's decorators only mark the function; give them their types.
export: Callable[[_F], _F] = _export
exportstream: Callable[[_F], _F] = _exportstream

#: The URL of an in-memory echo port: trioserial's own ``loop://``, where what
#: is sent comes back, one chunk per send.
LOOP: Final = "loop://"


def _check_present(url: str, baudrate: int) -> None:
    """Raise the :class:`~trioserial.SerialPortError` (a ``serial.SerialException``)
    that opening *url* would raise, if it is clearly not an openable port.

    A device path gets the presence check :class:`trioserial.PySerial` uses
    (it must be a character device), plus read and write permission; it is
    **not opened**: an open raises DTR and a close with HUPCL drops it, which
    resets many boards, and starting an exporter should not do that. A URL is
    opened and closed again, as the original driver does (there is no other
    way to see a TCP port).
    """
    url = check_url(url)
    if "://" in url:
        open_core(url, SerialSettings(baudrate=baudrate, exclusive=False)).close()
        return
    check_present(url, accessible=True)


class _Opening:
    """A ``connect()``'s open under way, which the driver's ``close()`` cuts short."""

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self._token = anyio.lowlevel.current_token()
        self._thread = threading.get_ident()

    def cancel_from_any_thread(self) -> None:
        """Cancel the open's scope, in its event loop's thread (a scope is not thread-safe)."""
        if threading.get_ident() == self._thread:
            self.scope.cancel()
            return
        with contextlib.suppress(anyio.RunFinishedError):  # the loop is gone: so is the open
            anyio.from_thread.run_sync(self.scope.cancel, token=self._token)


class _SerialConnection(anyio.abc.ByteStream):
    """One live ``connect()`` stream, with the exceptions Jumpstarter's forwarding needs.

    From :meth:`receive`: a device hangup is an :exc:`OSError` (a
    :class:`~trioserial.SerialPortError`), which ends the client's session
    (and is logged: Jumpstarter does not show the client's error in the
    exporter's log); Jumpstarter would swallow an
    :exc:`anyio.BrokenResourceError` and leave the client waiting forever.
    After the driver's ``close()`` it is :exc:`anyio.EndOfStream`, a clean end.

    The driver's exported ``close()`` runs in a worker thread (and again in
    the event loop's thread when a lease ends). Closing must wake tasks
    blocked on the fd, which only the loop's thread may do, so a close from
    another thread is run there with :func:`anyio.from_thread.run_sync` and
    waited for: when it returns, the fd is closed.
    """

    def __init__(self, port: AnyioSerialStream, cps: float | None, logger: logging.Logger) -> None:
        self.port = port
        # Jumpstarter's pacing: one character per slot, 1 / cps apart (see docs/jumpstarter.rst).
        self._pacer = Pacer(cps, burst=1) if cps else None
        self._logger = logger
        self._token = anyio.lowlevel.current_token()
        self._thread = threading.get_ident()
        #: Closed by the driver's close(): receive then reports a clean end of stream.
        self.forced = False

    @property
    def live(self) -> bool:
        """Whether the port is open (neither the driver nor the client closed it)."""
        return not self.port.closed

    def run_on_loop(self, fn: Callable[[], _T]) -> _T:
        """Run *fn* in this connection's event-loop thread (so it cannot race a close)."""
        if threading.get_ident() == self._thread:
            return fn()
        return anyio.from_thread.run_sync(fn, token=self._token)

    def close_from_any_thread(self) -> None:
        try:
            self.run_on_loop(self.force_close)
        except anyio.RunFinishedError:
            # The loop is gone, so nobody can be waiting on the fd.
            self.forced = True
            self.port._core.close()

    def force_close(self) -> None:
        """Close now, in the event loop's thread; receive then ends cleanly."""
        self.forced = True
        self.port.close()

    def _failure(self, exc: anyio.BrokenResourceError) -> SerialPortError:
        cause = exc.__cause__
        code = cause.errno if isinstance(cause, OSError) else None
        return SerialPortError(str(exc), port=self.port.port, errno=code)

    def _gone(self, error: SerialPortError) -> SerialPortError:
        self._logger.warning("serial port %r went away: %s", self.port.port, error)
        return error

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
            raise self._gone(
                SerialPortError(
                    f"serial port {self.port.port!r} hung up (device disconnected)",
                    port=self.port.port,
                    errno=errno.EIO,
                )
            ) from None
        except anyio.ClosedResourceError:
            if self.forced:
                raise anyio.EndOfStream from None
            raise
        except anyio.BrokenResourceError as exc:
            raise self._gone(self._failure(exc)) from exc.__cause__

    async def send(self, item: bytes) -> None:
        """Send *item*; with ``cps`` set, one character at a time, ``1 / cps`` seconds apart.

        The pacing runs across calls too (a character never follows the
        previous send's last one sooner than ``1 / cps``). Cancellation: a
        prefix of *item* was sent, the rest was not. A close (the driver's or
        this stream's) wakes a send waiting between characters at once, with
        :exc:`anyio.ClosedResourceError`.
        """
        try:
            if self._pacer is None or not item:
                await self.port.send(item)
                return
            sent = 0
            while sent < len(item):
                n = self._pacer.take(len(item) - sent, anyio.current_time())
                if not n:
                    await self.port.sleep_while_open(self._pacer.delay())
                    continue
                await self.port.send(item[sent : sent + n])
                sent += n
        except anyio.BrokenResourceError as exc:
            raise self._failure(exc) from exc.__cause__

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
      check_present: check at construction that the port exists, is a
        character device and may be opened (raising the
        :class:`~trioserial.SerialPortError` that says which, a
        ``serial.SerialException``); a device path is not opened for this, so
        no DTR pulse resets the board.
      cps: throttle sends to this many characters per second, one character
        at a time (slow consoles, U-Boot prompts); ``None``, 0 or a negative
        number (with a warning) sends at full speed, as the original does.
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
    _openings: Any = field(default_factory=set, init=False, repr=False)
    _cps: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if hasattr(super(), "__post_init__"):
            super().__post_init__()  # type: ignore[no-untyped-call]
        cps = self.cps
        if isinstance(cps, int | float) and not isinstance(cps, bool) and cps < 0:
            # The original driver sends at full speed then; so do we, but say so.
            self.logger.warning("cps %r is negative: sending without throttling", cps)
            cps = None
        self._cps = check_cps(cps)
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
        when :meth:`close` is called (also while it opens: the connection is
        then at end of stream). No task group or cancel scope spans the
        ``yield``.

        Cancellation: a network port's open (on the event loop) ends at
        once, its socket closed; a device's open in its worker thread is
        closed again before the cancellation is raised. No fd leaks.
        """
        cps_info = f", cps: {self.cps}" if self.cps is not None else ""
        self.logger.info("connecting to %s, baudrate: %d%s", self.url, self.baudrate, cps_info)
        opening = _Opening()
        with self._lock:
            closes = self._closes
            self._openings.add(opening)
        port: AnyioSerialStream | None = None
        try:
            with opening.scope:
                port = await self.open_port()
        finally:
            with self._lock:
                self._openings.discard(opening)
        if port is None:  # close() cut the open short: a connection at end of stream
            await anyio.lowlevel.checkpoint_if_cancelled()  # the caller's, if it came too
            settings = SerialSettings(baudrate=self.baudrate, exclusive=False)
            port = AnyioSerialStream(UnopenedCore(self.url, settings))
        connection = _SerialConnection(port, self._cps, self.logger)
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

    def _live(self) -> list[_SerialConnection]:
        with self._lock:
            return list(self._connections)

    @export
    def close(self) -> None:
        """Close every active connection, from any thread.

        Each connection's clients see a clean end of stream. When this
        returns, the port's file descriptors are closed, so another program
        (a flasher) can open the port at once. A ``connect()`` still opening
        gets a connection at end of stream too: a network port's open (on
        the event loop) is cut short at once, with no fd made; a device's
        open in its worker thread cannot be stopped, so its fd is closed as
        soon as it returns.
        Safe to call with no connection; connections made afterwards work as
        usual.
        """
        with self._lock:
            self._closes += 1
            openings = list(self._openings)
        for opening in openings:
            opening.cancel_from_any_thread()
        for connection in self._live():
            connection.close_from_any_thread()
        super().close()  # type: ignore[no-untyped-call]

    def _set_line(
        self, on_port: Callable[[AnyioSerialStream], None], on_core: Callable[[PortCore], None]
    ) -> None:
        """Drive a line on every open connection, or through a short-lived handle if none.

        A connection the driver's ``close()`` (or its client) has closed may
        still be registered until Jumpstarter's forwarding ends it: only the
        open ones count.
        """

        def drive(connection: _SerialConnection) -> bool:
            if not connection.live:
                return False
            on_port(connection.port)
            return True

        driven = [
            connection.run_on_loop(functools.partial(drive, connection))
            for connection in self._live()
        ]
        if any(driven):
            return
        # No open connection: set the line through a short-lived handle, as the
        # original driver always does; with disable_hupcl its close keeps the line.
        core = open_core(
            self.url,
            SerialSettings(baudrate=self.baudrate, exclusive=False),
            OpenOptions(hupcl=self._hupcl()),
        )
        try:
            on_core(core)
        finally:
            core.close()

    @export
    def set_dtr(self, value: bool) -> None:
        """Drive DTR on the open connection(s), or on a short-lived handle if none."""
        value = check_bool("dtr", value)

        def on_port(port: AnyioSerialStream) -> None:
            port.dtr = value

        self._set_line(on_port, lambda core: core.set_dtr(value))

    @export
    def set_rts(self, value: bool) -> None:
        """Drive RTS on the open connection(s), or on a short-lived handle if none."""
        value = check_bool("rts", value)

        def on_port(port: AnyioSerialStream) -> None:
            port.rts = value

        self._set_line(on_port, lambda core: core.set_rts(value))

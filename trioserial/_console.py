"""``trioserial console``: an interactive terminal on a serial port (layer 3).

The local terminal is put in raw mode so every key (Ctrl-C included) goes to
the device, except the exit key. Keyboard and screen are Trio streams
(:class:`trio.lowlevel.FdStream` on duplicated fds), so the whole session is
one Trio program: no threads, no polling on the data path.

Restoring the terminal is the part users notice when it goes wrong, so it is
done in one place (:func:`raw_terminal`), in a ``finally`` that every exit
path goes through: the exit key, the device vanishing, an error, and the
signals the command turns into a cancellation (SIGINT, SIGTERM, SIGHUP).

When the device starts ZMODEM (``sz`` or ``rz``), the device-to-screen path
hands the port to the transfer (``_console_zmodem``) and takes it back after;
meanwhile keys do not reach the port, and Ctrl-C or the exit key cancels.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import math
import os
import termios
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final

import attrs
import trio

from ._console_keys import key_name, parse_key
from ._console_zmodem import ZmodemOptions, run_transfer
from ._driver import PySerial
from ._errors import SerialPortError
from ._stream import AsyncSerial
from ._supervised import DeviceDisconnectedError, SupervisedStream
from ._zmodem_detect import ZmodemDetector

__all__ = [
    "RECONNECT_INTERVAL",
    "ConsoleOptions",
    "key_name",
    "parse_key",
    "raw_terminal",
    "run_console",
    "run_reconnecting_console",
]

#: ``--reconnect`` runs on :meth:`PySerial.run`: its first retry after this
#: many seconds, doubling up to :data:`RECONNECT_MAX_INTERVAL`. A device being
#: plugged in is a human-scale event, so this is quick enough.
RECONNECT_INTERVAL: Final = 0.2
RECONNECT_MAX_INTERVAL: Final = 1.0
#: How long the exit key waits for keys typed before it to reach the device
#: (a device holding off with flow control must not keep the console open).
EXIT_FLUSH_SECONDS: Final = 1.0


@attrs.frozen(kw_only=True)
class ConsoleOptions:
    """What ``trioserial console`` was asked to do.

    Attributes:
      exit_key: the byte that ends the session (default Ctrl-], 0x1d).
      echo: show typed keys locally (for devices that do not echo).
      eol: what Enter sends: ``b"\\r"``, ``b"\\n"`` or ``b"\\r\\n"``.
      lf_to_crlf: show each LF from the device as CR LF (for devices that end
        lines with a bare LF).
      reconnect: when the device disappears, wait for it to come back.
      zmodem: what to do when the device starts ``sz`` or ``rz``; ``None``:
        its output is only shown.
    """

    exit_key: int = 0x1D
    echo: bool = False
    eol: bytes = b"\r"
    lf_to_crlf: bool = False
    reconnect: bool = False
    zmodem: ZmodemOptions | None = None


def _raw(attributes: list[Any]) -> list[Any]:
    """cfmakeraw(3): no echo, no line editing, no signals, no output processing."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attributes
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    cc = list(cc)
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]


@contextmanager
def raw_terminal(fd: int, *others: int) -> Iterator[None]:
    """Put the terminal on *fd* in raw mode; restore it, whatever happens.

    Also records the blocking mode of *fd* and *others* (stdout, stderr) and
    puts it back: :class:`trio.lowlevel.FdStream` makes an fd non-blocking,
    and the terminal's stdin, stdout and stderr usually share one open file
    description with the shell, which must not inherit ``O_NONBLOCK``.
    """
    saved = termios.tcgetattr(fd)
    blocking = {n: os.get_blocking(n) for n in (fd, *others)}
    termios.tcsetattr(fd, termios.TCSANOW, _raw(saved))
    try:
        yield
    finally:
        # TCSANOW, not TCSADRAIN: restoring must not wait for the terminal to
        # take our output (a stalled terminal would hang the exit).
        termios.tcsetattr(fd, termios.TCSANOW, saved)
        for n, was_blocking in blocking.items():
            os.set_blocking(n, was_blocking)


class _Session:
    """One console run: keyboard -> port, port -> screen, and what the port does."""

    def __init__(
        self,
        url: str,
        options: ConsoleOptions,
        keyboard: trio.abc.ReceiveStream,
        screen: trio.abc.SendStream,
        log: trio.abc.SendStream | None,
    ) -> None:
        self.url = url
        self.options = options
        self.keyboard = keyboard
        self.screen = screen
        self.log = log
        #: Where keys go now (``None``: no device, keys are dropped).
        self.port: trio.abc.SendStream | None = None
        #: What the exit key waits on to drain.
        self.serial: AsyncSerial | None = None
        self.exit_code = 0
        self._key = key_name(options.exit_key)
        self._screen_lock = trio.Lock()
        # Keys typed while the device is slow to take them. Unbounded on
        # purpose: the keyboard reader must never block, or the exit key
        # would not be seen; a person types (or pastes) a bounded amount.
        self._keys_in, self._keys_out = trio.open_memory_channel[bytes](math.inf)
        self._sending_keys = trio.CancelScope()
        #: While a ZMODEM transfer runs: what Ctrl-C or the exit key cancels.
        self._transfer: trio.CancelScope | None = None

    async def show(self, data: bytes) -> None:
        async with self._screen_lock:
            await self.screen.send_all(data)

    async def say(self, message: str) -> None:
        """A status line of ours, set apart from the device's output."""
        await self.show(f"\r\n[trioserial] {message}\r\n".encode())

    async def run(self, port: AsyncSerial | SupervisedStream) -> int:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._read_keyboard)
            nursery.start_soon(self._send_keys)
            if isinstance(port, SupervisedStream):
                nursery.start_soon(self._serve_supervised, port)
            else:
                nursery.start_soon(self._serve_port, port)
        return self.exit_code

    def _stop(self, code: int) -> None:
        self.exit_code = code
        self._nursery.cancel_scope.cancel()

    async def _read_keyboard(self) -> None:
        exit_key = bytes([self.options.exit_key])
        while True:
            try:
                data = await self.keyboard.receive_some()
            except trio.BrokenResourceError:  # EIO: the terminal hung up
                data = b""
            if not data:  # the terminal went away (window closed, ssh dropped)
                self._stop(1)
                return
            if self._transfer is not None:
                # The port is the transfer's: keys are not sent. Ctrl-C or the
                # exit key stops the transfer (not the console).
                if b"\x03" in data or exit_key in data:
                    self._transfer.cancel()
                continue
            typed, hit, _ = bytes(data).partition(exit_key)
            if typed:
                self._keys_in.send_nowait(typed)
            if hit:
                # Keys typed before the exit key (often in the same read: a
                # paste, a fast typist) still go out; _send_keys stops the
                # session once they have, or after EXIT_FLUSH_SECONDS.
                self._keys_in.close()
                self._sending_keys.deadline = trio.current_time() + EXIT_FLUSH_SECONDS
                return

    async def _send_keys(self) -> None:
        """Send keys to the device until the exit key, then end the session."""
        eol = self.options.eol
        with self._sending_keys:
            async for typed in self._keys_out:
                if self.options.echo:
                    await self.show(typed.replace(b"\r", b"\r\n"))
                port = self.port
                if port is None:
                    continue  # no device right now: like typing into an unplugged cable
                if self._transfer is not None:
                    continue  # typed just before a transfer started: the port is the transfer's
                # If the device went away meanwhile, the port side says so and decides what next.
                with contextlib.suppress(
                    trio.ClosedResourceError, trio.BrokenResourceError, DeviceDisconnectedError
                ):
                    await port.send_all(typed if eol == b"\r" else typed.replace(b"\r", eol))
            # The exit key closed the channel. Closing the port discards what
            # the UART has not sent yet: let the last keys leave the wire first.
            serial = self.serial
            if serial is not None:
                # SerialPortError: no queue to ask (a pty), or the device just left.
                with contextlib.suppress(
                    trio.ClosedResourceError, trio.BrokenResourceError, SerialPortError
                ):
                    await serial.wait_drained()
        self._stop(0)

    async def _serve_port(self, port: AsyncSerial) -> None:
        """Without ``--reconnect``: the one port, until it goes away."""
        self.port = self.serial = port
        try:
            framing = port.settings.framing
            await self.say(f"connected to {self.url} ({framing}); exit with {self._key}")
            reason = await self._copy_to_screen(port)
        finally:
            self.port = self.serial = None
            port.close()
        await self.say(f"{self.url} disappeared ({reason})")
        self._stop(1)

    async def _copy_to_screen(self, port: AsyncSerial | SupervisedStream) -> str:
        """Show what the device sends until it goes away; return why it did."""
        lf_to_crlf = self.options.lf_to_crlf
        zmodem = self.options.zmodem
        detector = ZmodemDetector() if zmodem is not None else None
        unread = b""  # what a transfer left of the bytes it was handed
        while True:
            if unread:
                data, unread = unread, b""
            else:
                try:
                    data = await port.receive_some()
                except trio.BrokenResourceError as exc:
                    return str(exc.__cause__ or exc)
                if not data:
                    return HUNG_UP
            start = None
            if detector is not None:
                data, start = detector.feed(data)
            if self.log is not None and data:
                await self.log.send_all(data)
            if data:
                await self.show(data.replace(b"\n", b"\r\n") if lf_to_crlf else data)
            if start is not None and zmodem is not None:
                self._transfer = trio.CancelScope()
                try:
                    unread = await run_transfer(
                        port,
                        start,
                        zmodem,
                        say=self.say,
                        show=self.show,
                        scope=self._transfer,
                    )
                finally:
                    self._transfer = None

    async def _serve_supervised(self, port: SupervisedStream) -> None:
        """With ``--reconnect``: the supervised port, across unplugs and replugs."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow_connection, port)
            await self._copy_to_screen(port)  # b"": supervision stopped
            nursery.cancel_scope.cancel()
        self._stop(1)

    async def _follow_connection(self, port: SupervisedStream) -> None:
        """Tell the user where the device is; keys go to it only while it is there."""
        verb = "connected"
        if not port.connected.value:
            await self.say(f"waiting for {self.url} to appear; exit with {self._key}")
        while True:
            await port.connected.wait_value(True)
            self.port, self.serial = port, port.serial
            framing = port.serial.settings.framing if port.serial is not None else "?"
            await self.say(f"{verb} to {self.url} ({framing}); exit with {self._key}")
            await port.connected.wait_value(False)
            self.port = self.serial = None
            await self.say(f"{self.url} disappeared ({_reason(port.last_error.value)})")
            await self.say(f"waiting for {self.url} to come back; exit with {self._key}")
            verb = "reconnected"


HUNG_UP: Final = "the device hung up: unplugged, powered off or closed"


def _reason(error: OSError | None) -> str:
    if error is None or error.errno == errno.EIO:
        return HUNG_UP
    return str(error)


@asynccontextmanager
async def _terminal_session(
    url: str, options: ConsoleOptions, log: trio.abc.SendStream | None, stdin: int, stdout: int
) -> AsyncIterator[_Session]:
    with raw_terminal(stdin, stdout), contextlib.ExitStack() as fds:
        keyboard = trio.lowlevel.FdStream(os.dup(stdin))
        fds.callback(keyboard.close)
        screen = trio.lowlevel.FdStream(os.dup(stdout))
        fds.callback(screen.close)  # closed first: blocking modes come back in order
        yield _Session(url, options, keyboard, screen, log)


async def run_console(
    port: AsyncSerial,
    url: str,
    options: ConsoleOptions,
    *,
    log: trio.abc.SendStream | None = None,
    stdin: int = 0,
    stdout: int = 1,
) -> int:
    """Run an interactive session on the open *port* until the exit key.

    Puts the terminal on *stdin* in raw mode and restores it on every exit
    path (cancellation included). Returns the exit code: 0 after the exit
    key, 1 when the device disappeared or the terminal closed. The port is
    closed on return.
    """
    async with _terminal_session(url, options, log, stdin, stdout) as session:
        code = await session.run(port)
        if code == 0:
            await session.say("exit")
        return code


async def run_reconnecting_console(
    driver: PySerial,
    options: ConsoleOptions,
    *,
    dtr: bool | None = None,
    rts: bool | None = None,
    log: trio.abc.SendStream | None = None,
    stdin: int = 0,
    stdout: int = 1,
) -> int:
    """``console --reconnect``: a session on *driver*'s supervised port (:meth:`PySerial.run`).

    The device may be absent at the start and may go and come back, under
    the same name or, for a USB adapter, a new one (its by-id link or its
    USB identity). *dtr* and *rts* are set after every open. Keys typed
    while it is away are dropped. Raises what the first open raises, other
    than "not found" (permission, not a serial port). Returns as
    :func:`run_console` does; the port is closed on return.
    """
    with _quiet_driver_log():
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                functools.partial(
                    driver.run,
                    initial_backoff=RECONNECT_INTERVAL,
                    max_backoff=RECONNECT_MAX_INTERVAL,
                )
            )
            try:
                if dtr is not None:
                    driver.set_dtr(dtr)
                if rts is not None:
                    driver.set_rts(rts)
                name = driver.url or port.path  # a USB identity: as the port names it
                async with _terminal_session(name, options, log, stdin, stdout) as session:
                    code = await session.run(port)
                    if code == 0:
                        await session.say("exit")
                    return code
            finally:
                driver.close()


@contextmanager
def _quiet_driver_log() -> Iterator[None]:
    """The session says on screen when the device goes; the driver's log
    would print the same into the raw terminal, without its line endings."""
    driver_log = logging.getLogger("trioserial.driver")
    handler = logging.NullHandler()
    driver_log.addHandler(handler)
    propagate, driver_log.propagate = driver_log.propagate, False
    try:
        yield
    finally:
        driver_log.propagate = propagate
        driver_log.removeHandler(handler)

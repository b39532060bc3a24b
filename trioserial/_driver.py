"""``PySerial``: a configured serial port that lives for the whole program (layer 3).

The driver holds a port's configuration and the handles opened from it:
``connect()`` hands out streams, ``close()`` takes them all back from any
thread, ``set_dtr``/``set_rts`` act on the live handle, and ``run()``
supervises the port in a nursery, reconnecting when the device comes back.
"""

from __future__ import annotations

import errno
import functools
import logging
import math
import os
import re
import stat
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar, final

import attrs
import trio
import trio_util
from serial.tools import list_ports

from ._core import DEFAULT_RECEIVE_SIZE, PortCore, byte_view, check_max_bytes
from ._errors import (
    NotASerialPortError,
    PortNotFoundError,
    SerialPortError,
    UnsupportedOperationError,
)
from ._open import check_url, open_core
from ._options import OpenOptions
from ._port import TtyPort
from ._resolve import BY_ID_DIR, stable_path
from ._settings import ModemLines, SerialSettings, SerialStatistics
from ._stream import AsyncSerial, Buffer
from ._util import ConflictDetector, check_bool

__all__ = ["DriverStream", "PySerial", "SupervisedStream"]

logger: Final = logging.getLogger("trioserial.driver")

T = TypeVar("T")

#: Where udev puts stable names of USB serial adapters. ``run()`` looks here for
#: a link to the configured device, so that a replug that renumbers the tty
#: (``ttyUSB0`` -> ``ttyUSB1``) is followed.


def _is_url(url: str) -> bool:
    return "://" in url


def _check_cps(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"cps must be a number of characters per second or None, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"cps must be a finite number >= 0 (0 or None: no throttle), got {value!r}"
        )
    return float(value) if value else None


def _check_present(url: str) -> None:
    if _is_url(url):
        return  # a network or virtual port: nothing on the filesystem to look at
    try:
        st = os.stat(url)
    except FileNotFoundError:
        raise PortNotFoundError(
            f"serial port {url!r} is not present (no such device); pass check_present=False "
            f"for a port that appears later",
            port=url,
            errno=errno.ENOENT,
        ) from None
    except OSError as exc:
        raise SerialPortError(
            f"cannot check serial port {url!r}: {exc.strerror}", port=url, errno=exc.errno
        ) from exc
    if not stat.S_ISCHR(st.st_mode):
        raise NotASerialPortError(
            f"serial port {url!r} is not a character device", port=url, errno=errno.ENOTTY
        )


@attrs.frozen
class UsbIdentity:
    """What identifies a USB serial adapter across replugs."""

    vid: int
    pid: int
    serial_number: str


def usb_identity(path: str) -> UsbIdentity | None:
    """The USB identity of the device at *path*, if it is a USB adapter with a serial number.

    Blocking (scans sysfs through :func:`serial.tools.list_ports.comports`).
    """
    if _is_url(path):
        return None
    target = os.path.realpath(path)
    for info in list_ports.comports():
        if os.path.realpath(info.device) == target:
            if info.vid is None or info.pid is None or not info.serial_number:
                return None  # without a serial number, a twin adapter would match too
            return UsbIdentity(vid=info.vid, pid=info.pid, serial_number=info.serial_number)
    return None


def find_usb_port(identity: UsbIdentity) -> str | None:
    """The device path of the adapter with *identity* now, or ``None``. Blocking."""
    for info in list_ports.comports():
        if (info.vid, info.pid, info.serial_number) == (
            identity.vid,
            identity.pid,
            identity.serial_number,
        ):
            return str(info.device)
    return None


def _in_trio_thread(token: trio.lowlevel.TrioToken) -> bool:
    try:
        return trio.lowlevel.current_trio_token() is token
    except RuntimeError:
        return False


# --------------------------------------------------------------------- pacing


class _Pacer:
    """A token bucket on Trio's clock: *cps* characters per second.

    The bucket holds at most ``max(1, cps / 100)`` characters (10 ms worth),
    so a sender that was held up never catches up in a long burst.
    """

    def __init__(self, cps: float) -> None:
        self.cps = cps
        self.burst = max(1, int(cps / 100))
        self._tokens = float(self.burst)
        self._last: float | None = None

    def _refill(self) -> None:
        now = trio.current_time()
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.cps)
        self._last = now

    async def wait_allowance(self, want: int, serial: AsyncSerial) -> int:
        """Wait until at least one character may go; return how many (<= *want*).

        The wait is a sleep on *serial* that closing it cuts short (with
        :exc:`trio.ClosedResourceError`): with a slow ``cps`` the next slot can
        be seconds away, and a close must wake the sender at once.
        """
        while True:
            self._refill()
            n = min(want, int(self._tokens + 1e-9))
            if n >= 1:
                return n
            await serial._sleep_while_open((1 - self._tokens) / self.cps)

    def spend(self, n: int) -> None:
        self._tokens -= n


async def _paced_send(serial: AsyncSerial, view: memoryview, pacer: _Pacer) -> None:
    """Send *view* through *serial* at the pacer's rate (always a checkpoint)."""
    if not view:
        await serial.send_all(view)  # the closed/EOF checks and the checkpoint
        return
    sent = 0
    while sent < len(view):
        n = await pacer.wait_allowance(len(view) - sent, serial)
        pacer.spend(n)
        await serial.send_all(view[sent : sent + n])
        sent += n


# ----------------------------------------------------------------- connect()


@final
class DriverStream(trio.abc.Stream):
    """One connection from :meth:`PySerial.connect`.

    A :class:`trio.abc.Stream` with the contract of
    :class:`~trioserial.AsyncSerial` (which it wraps; see :attr:`serial`), with
    two differences:

    * **Closed by the driver = end of stream.** When :meth:`PySerial.close`
      takes the port back, a task blocked in (or later calling)
      :meth:`receive_some` gets ``b""`` and :meth:`receive` raises
      :exc:`trio.EndOfChannel`, exactly as at a hangup: the conversation is
      over, nothing went wrong. Sending then raises
      :exc:`trio.ClosedResourceError`. Closing the stream yourself
      (:meth:`aclose`) gives the usual :exc:`trio.ClosedResourceError`.
    * **Throttling.** With the driver's ``cps`` set, :meth:`send_all` hands
      the characters to the OS no faster than ``cps`` per second (timed on
      Trio's clock). A cancelled throttled send has sent exactly a prefix of
      its data: ``statistics().bytes_sent`` grew by that prefix's length.
    """

    def __init__(self, core: PortCore, cps: float | None) -> None:
        self._core = core
        self._serial = AsyncSerial(core)
        self._pacer = _Pacer(cps) if cps else None
        self._send_conflict = ConflictDetector(
            "another task is using this serial port for send", trio.BusyResourceError
        )
        self._forced = False

    @property
    def serial(self) -> AsyncSerial:
        """The underlying port, for the control surface (settings, modem lines, drain)."""
        return self._serial

    @property
    def closed_by_driver(self) -> bool:
        """Whether :meth:`PySerial.close` ended this connection."""
        return self._forced

    def _force_close(self) -> None:
        # Trio thread only: wakes blocked tasks (notify_closing) and closes the fd.
        self._forced = True
        self._serial.close()

    async def send_all(self, data: Buffer) -> None:
        """Send all of *data* (throttled when the driver has ``cps``).

        Cancellation: as :meth:`AsyncSerial.send_all`: a prefix went out, and
        ``statistics().bytes_sent`` says how long it was.

        Raises:
          trio.ClosedResourceError: the stream was closed (by you or by the
            driver) or :meth:`send_eof` was called.
          trio.BrokenResourceError: the OS reported an error (hangup: ``EIO``).
          trio.BusyResourceError: another task is sending.
          TypeError: *data* is not bytes-like.
        """
        with self._send_conflict:
            try:
                if self._pacer is None:
                    await self._serial.send_all(data)
                else:
                    with byte_view(data) as view:
                        await _paced_send(self._serial, view, self._pacer)
            except trio.ClosedResourceError:
                if self._forced:
                    raise trio.ClosedResourceError("serial port was closed by the driver") from None
                raise

    async def send(self, data: Buffer) -> None:
        """The same as :meth:`send_all` (the name Jumpstarter's streams use)."""
        await self.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """As :meth:`AsyncSerial.wait_send_all_might_not_block` (throttling aside).

        Cancellation leaves nothing behind.
        """
        with self._send_conflict:
            await self._serial.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """Stop sending from this side; the device is not told (:meth:`AsyncSerial.send_eof`).

        Cancellation: a cancelled call changed nothing.
        """
        with self._send_conflict:
            await self._serial.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """As :meth:`AsyncSerial.receive_some`; ``b""`` also once the driver closed the port.

        Cancellation: a cancelled receive has consumed nothing.
        """
        try:
            return await self._serial.receive_some(max_bytes)
        except trio.ClosedResourceError:
            if not self._forced:
                raise
        await trio.lowlevel.checkpoint()
        return b""

    async def receive(self, max_bytes: int = DEFAULT_RECEIVE_SIZE) -> bytes:
        """Like :meth:`receive_some`, raising :exc:`trio.EndOfChannel` instead of ``b""``.

        Cancellation: a cancelled receive has consumed nothing.
        """
        data = await self.receive_some(max_bytes)
        if not data:
            why = "was closed by the driver" if self._forced else "hung up"
            raise trio.EndOfChannel(f"serial port {self._serial.port!r} {why}")
        return data

    def __aiter__(self) -> DriverStream:
        return self

    async def __anext__(self) -> bytes:
        """``async for chunk in stream``: chunks until end of stream."""
        data = await self.receive_some()
        if not data:
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        """Close this connection gracefully, as :meth:`AsyncSerial.aclose`. Others stay open.

        Idempotent. Cancellation: it still closes, discarding output not yet sent.
        """
        await self._serial.aclose()

    def statistics(self) -> SerialStatistics:
        """The wrapped port's counters (``bytes_sent`` is exact after a cancelled send)."""
        return self._serial.statistics()

    def fileno(self) -> int:
        """This connection's fd, or ``-1`` once closed."""
        return self._serial.fileno()

    def __repr__(self) -> str:
        cps = f" cps={self._pacer.cps:g}" if self._pacer else ""
        return f"<trioserial.DriverStream {self._serial!r}{cps}>"


class _SharedTty(TtyPort):
    """A ``dup`` of the line's fd, for one connection.

    Closing it closes only this fd: it does not discard the output that the
    other connections queued on the shared tty (only the line's last close
    can hit the kernel's closing wait, and the line discards then).

    The tty has one set of termios, so its settings are the line's: a
    ``reconfigure`` through one connection is what every connection (and
    every later one) reports, and what each compares a change against.
    """

    def __init__(self, primary: TtyPort) -> None:
        self._primary = primary
        super().__init__(
            os.dup(primary.fileno()), primary.name, primary.settings, ioctl=primary.ioctl
        )

    @property
    def settings(self) -> SerialSettings:
        return self._primary.settings

    @settings.setter
    def settings(self, value: SerialSettings) -> None:
        self._primary.settings = value

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd != -1:
            os.close(fd)


class _Line:
    """One open of a tty, shared by every live ``connect()`` through dup'd fds."""

    def __init__(self, core: PortCore) -> None:
        self.core = core
        self.connections: set[DriverStream] = set()


#: URLs whose open goes over the network (also behind spy://).
_NETWORK_URL: Final = re.compile(r"(^|://)(socket|rfc2217)://", re.IGNORECASE)


def _in_any_trio_thread() -> bool:
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


# -------------------------------------------------------------------- driver


def _settings_from(baudrate: object, settings: dict[str, Any]) -> SerialSettings:
    return SerialSettings().replace(baudrate=baudrate, **settings)


@final
@attrs.define(init=False, eq=False, repr=False)
class PySerial:
    """A serial port, configured once and used for the life of a program.

    The Trio-native form of Jumpstarter's ``PySerial`` driver: the same
    fields and defaults, plus every :class:`~trioserial.SerialSettings`
    field as a keyword. All options are validated here, before any I/O
    beyond the presence check; the fields cannot be changed afterwards.

    Args:
      url: a device path (``/dev/ttyUSB0``, ``/dev/serial/by-id/...``, a pty)
        or a ``scheme://`` URL.
      baudrate: bits per second.
      check_present: fail now, with :exc:`~trioserial.PortNotFoundError`,
        if the device path does not exist (``scheme://`` URLs always count as
        present). ``False`` allows a port that appears later, such as the USB
        serial of a board that is not powered yet. Unlike Jumpstarter, the
        check does not open the port (an open toggles DTR and can reset the
        board).
      cps: throttle sending to this many characters per second (``None`` or
        ``0``: no throttle). For devices whose input cannot keep up, such as a
        bootloader prompt typed into without flow control.
      disable_hupcl: clear ``HUPCL`` after every open, so that closing the
        port does not drop DTR/RTS (which resets many boards).
      settings: ``bytesize``, ``parity``, ``stopbits``, ``xonxoff``,
        ``rtscts``, ``dsrdtr``, ``exclusive``: see
        :class:`~trioserial.SerialSettings`.

    Raises:
      TypeError, ValueError: a malformed option (the message names it).
      trioserial.UnsupportedURLError: an unknown URL scheme.
      trioserial.PortNotFoundError: *check_present* and the path does not exist.
      trioserial.NotASerialPortError: *check_present* and the path is not a device.
    """

    url: str = attrs.field(on_setattr=attrs.setters.frozen)
    baudrate: int = attrs.field(on_setattr=attrs.setters.frozen)
    check_present: bool = attrs.field(on_setattr=attrs.setters.frozen)
    cps: float | None = attrs.field(on_setattr=attrs.setters.frozen)
    disable_hupcl: bool = attrs.field(on_setattr=attrs.setters.frozen)
    #: The complete line settings (``baudrate`` included).
    settings: SerialSettings = attrs.field(on_setattr=attrs.setters.frozen)

    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _line: _Line | None = attrs.field(init=False, default=None)
    _others: set[DriverStream] = attrs.field(init=False, factory=set)
    _supervisors: set[SupervisedStream] = attrs.field(init=False, factory=set)
    _token: trio.lowlevel.TrioToken | None = attrs.field(init=False, default=None)
    _open_lock: trio.Lock = attrs.field(init=False, factory=trio.Lock)
    _closes: int = attrs.field(init=False, default=0)
    _opening: int = attrs.field(init=False, default=0)
    _dtr: bool | None = attrs.field(init=False, default=None)
    _rts: bool | None = attrs.field(init=False, default=None)
    # Levels set while no handle was open (a supervised port away, an open
    # under way): not known to be possible on this device until an open takes them.
    _pending_lines: dict[str, bool] = attrs.field(init=False, factory=dict)

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        baudrate: int = 115200,
        check_present: bool = True,
        cps: float | None = None,
        disable_hupcl: bool = False,
        **settings: Any,
    ) -> None:
        url = check_url(url)
        line_settings = _settings_from(baudrate, settings)
        check_present = check_bool("check_present", check_present)
        disable_hupcl = check_bool("disable_hupcl", disable_hupcl)
        cps = _check_cps(cps)
        if check_present:
            _check_present(url)
        self.__attrs_init__(
            url=url,
            baudrate=line_settings.baudrate,
            check_present=check_present,
            cps=cps,
            disable_hupcl=disable_hupcl,
            settings=line_settings,
        )

    def __repr__(self) -> str:
        cps = f" cps={self.cps:g}" if self.cps else ""
        return f"<trioserial.PySerial {self.url!r} {self.settings.framing}{cps}>"

    # ------------------------------------------------------------ opening

    def _open_options(self, url: str) -> OpenOptions:
        # What set_dtr()/set_rts() asked for outlives the handle they acted on:
        # every later open (connect, brief open, reconnect) puts the lines back.
        return OpenOptions(
            dtr=self._dtr,
            rts=self._rts,
            hupcl=False if self.disable_hupcl and not _is_url(url) else None,
        )

    def _open_blocking(self, url: str, options: OpenOptions | None = None) -> PortCore:
        """Open a handle with our settings and open-time options. Blocking: use a thread."""
        return open_core(url, self.settings, options or self._open_options(url))

    async def _open_in_thread(
        self, fn: Callable[[OpenOptions], T], core_of: Callable[[T], PortCore]
    ) -> T:
        """Run the open *fn* in a worker thread, then apply what set_dtr/set_rts
        asked for while it ran. Trio thread.

        Meanwhile set_dtr/set_rts only remember the level (a brief open beside
        this one would fight it for the lock); the options are fixed before
        the thread starts, so what changed since is applied here, with no
        checkpoint before the caller registers the handle.
        """
        options = self._open_options(self.url)
        self._opening += 1
        try:
            result = await trio.to_thread.run_sync(fn, options)
        finally:
            self._opening -= 1
        core = core_of(result)
        try:
            for name in ("dtr", "rts"):
                self._apply_line(core, name, getattr(options, name))
        except BaseException:
            core.close()
            raise
        return result

    def _apply_line(self, core: PortCore, name: str, opened_with: bool | None) -> None:
        """Give the just-opened *core* the level set_dtr/set_rts asked for since
        its options were fixed. Trio thread, no checkpoint.

        A level remembered while no handle was open was never tried on this
        device: if it has no such line (a pty, a plain socket), the level is
        dropped with a warning instead of failing this open and every later
        one. Once taken, it is re-applied on every later open.
        """
        pending = name in self._pending_lines
        want = self._pending_lines.pop(name) if pending else getattr(self, f"_{name}")
        if want is None:
            return
        if want != opened_with:
            try:
                getattr(core, f"set_{name}")(want)
            except UnsupportedOperationError as exc:
                if not pending:
                    raise
                logger.warning("%s: cannot set %s, level dropped: %s", self.url, name.upper(), exc)
                return
        setattr(self, f"_{name}", want)

    def _claim_token(self) -> trio.lowlevel.TrioToken:
        token = trio.lowlevel.current_trio_token()
        with self._lock:
            if self._token is not None and self._token is not token and self._live():
                raise RuntimeError(f"{self!r} is already in use by another trio.run()")
            self._token = token
        return token

    def _live(self) -> bool:
        return self._line is not None or bool(self._others) or bool(self._supervisors)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[DriverStream]:
        """Open the port and yield it as a :class:`DriverStream`.

        Any number of connections may be live at once. On a tty they share
        one open of the device: the first ``connect()`` opens it (with the
        ``exclusive`` lock, if set), the others get duplicates of that file
        descriptor, so no second open re-asserts DTR/RTS, re-applies
        settings or fights over the lock; the device is closed when the last
        connection ends. Like any two readers of one tty, concurrent
        receivers *share* the input (each byte goes to one of them). A URL
        transport without a file to duplicate opens a new connection each
        time.

        No task group or cancel scope spans the ``yield``: the body runs in
        the caller's own task.

        Leaving the block closes the connection as :meth:`DriverStream.aclose`
        does: output the body sent and the device has not taken yet is given
        time to go out (twice what it takes at the line rate, at least a
        second), so a last command is not discarded by the close.

        Cancellation: the open runs in a worker thread and cannot be
        interrupted; a cancellation that arrives meanwhile is delivered at
        the body's first checkpoint. Leaving the block cancelled closes the
        connection at once (queued output is discarded). No fd leaks.

        Raises:
          trioserial.SerialPortError: the port could not be opened (the
            subclasses say why).
        """
        stream = await self._open_connection()
        try:
            yield stream
        finally:
            try:
                await stream.aclose()  # let what the body sent go out (bounded)
            finally:
                self._release(stream)

    async def _open_connection(self) -> DriverStream:
        self._claim_token()
        closes = self._closes
        async with self._open_lock:
            line = self._line
            if line is None:
                core = await self._open_in_thread(
                    functools.partial(self._open_blocking, self.url), lambda core: core
                )
                if not isinstance(core, TtyPort):
                    stream = DriverStream(core, self.cps)
                    self._others.add(stream)
                    return self._maybe_closed_meanwhile(stream, closes)
                line = self._line = _Line(core)
        # Every connection gets its own fd on the one open file description:
        # closing one (or GC) never touches the others or the line.
        primary = line.core
        assert isinstance(primary, TtyPort)
        stream = DriverStream(_SharedTty(primary), self.cps)
        line.connections.add(stream)
        return self._maybe_closed_meanwhile(stream, closes)

    def _maybe_closed_meanwhile(self, stream: DriverStream, closes: int) -> DriverStream:
        # close() ran while we were opening: that close covers this connection too.
        if self._closes != closes:
            stream._force_close()
            self._release(stream)
        return stream

    def _release(self, stream: DriverStream) -> None:
        """Close *stream* and, with the last connection of a line, the line. Trio thread."""
        stream.serial.close()
        self._others.discard(stream)
        line = self._line
        if line is not None and stream in line.connections:
            line.connections.discard(stream)
            if not line.connections:
                self._line = None
                line.core.close()

    # --------------------------------------------------------------- close

    def close(self) -> None:
        """Close every connection and supervised port of this driver.

        Sync, idempotent, and safe to call from any thread: from the Trio
        thread it acts at once; from another thread it asks the Trio thread
        to act (``TrioToken.run_sync_soon``) and waits for it. Either way,
        when it returns every fd is closed. Blocked receivers wake with end
        of stream (``b""`` / :exc:`trio.EndOfChannel`), not an error;
        blocked senders get :exc:`trio.ClosedResourceError`; supervised
        ``run()`` tasks return. The driver stays usable: a later
        :meth:`connect` opens the port again.

        Output still queued in the OS is discarded (see
        :meth:`AsyncSerial.close`). An open that is already running in a
        worker thread (a ``connect()`` or a reconnect in progress) cannot be
        interrupted: its fd is closed as soon as the open returns, and that
        connection starts at end of stream.
        """
        self._in_loop(self._close_now, fallback=self._close_without_loop)

    def _close_now(self) -> None:
        self._closes += 1
        for stream in list(self._others):
            stream._force_close()
            self._release(stream)
        line = self._line
        if line is not None:
            for stream in list(line.connections):
                stream._force_close()
                self._release(stream)
        for sup in list(self._supervisors):
            sup._stop()

    def _close_without_loop(self) -> None:
        # The trio.run() that owned the handles has ended: nobody can be
        # blocked on them, so closing the fds directly is all there is to do.
        self._closes += 1
        for stream in list(self._others):
            stream._core.close()
        self._others.clear()
        line, self._line = self._line, None
        if line is not None:
            for stream in line.connections:
                stream._core.close()
            line.core.close()

    def _in_loop(self, fn: Callable[[], T], *, fallback: Callable[[], T]) -> T:
        """Run *fn* in the Trio thread that owns our handles, and wait for it."""
        with self._lock:
            token = self._token
        if token is None or _in_trio_thread(token):
            return fn()
        done = threading.Event()
        result: list[T] = []
        error: list[BaseException] = []

        def callback() -> None:
            try:
                result.append(fn())
            except BaseException as exc:  # handed to the calling thread
                error.append(exc)
            finally:
                done.set()

        try:
            token.run_sync_soon(callback)
        except trio.RunFinishedError:
            return fallback()
        done.wait()
        if error:
            raise error[0]
        return result[0]

    # ---------------------------------------------------------- DTR / RTS

    def set_dtr(self, value: bool) -> None:
        """Drive DTR; remembered and re-applied on every later open.

        With a connection (or a supervised port) live, this is one ioctl on
        its handle: no second open that would re-assert the lines or flush
        input. While a supervised port is reconnecting, the level is only
        remembered: the supervisor's next open sets it (or, on a device without
        that line, drops it with a warning). With nothing open and
        nothing supervised, the port is opened briefly, in the calling
        thread, to set the line (a non-blocking open that does not wait for
        carrier); closing it again drops DTR/RTS unless ``disable_hupcl``.
        Sync and safe from any thread, like :meth:`close`; except that a
        ``socket://`` or ``rfc2217://`` port with nothing open is refused in
        the Trio thread, where its brief open (DNS, connect, negotiation)
        would block the event loop.

        Raises:
          TypeError: *value* is not a bool.
          RuntimeError: a network port with nothing open, called in the Trio
            thread.
          trioserial.UnsupportedOperationError: the port has no modem lines
            (a pty, a plain socket).
          trioserial.SerialPortError: the brief open failed.
        """
        value = check_bool("dtr", value)
        self._set_line("dtr", value)

    def set_rts(self, value: bool) -> None:
        """Drive RTS; the same rules as :meth:`set_dtr`."""
        value = check_bool("rts", value)
        self._set_line("rts", value)

    def _set_line(self, name: str, value: bool) -> None:
        def act(core: PortCore) -> None:
            (core.set_dtr if name == "dtr" else core.set_rts)(value)

        def on_live() -> bool:
            handles = self._handles()
            for core in handles:
                act(core)
            for sup in self._supervisors:
                sup._publish_modem_lines()
            if handles:
                setattr(self, f"_{name}", value)
                self._pending_lines.pop(name, None)
                return True
            if self._supervisors or self._opening:
                # An open under way, or a supervised port between connections:
                # that open (or the next one) applies the level. A brief open now
                # would be a second handle racing it for the lock, and its close
                # would drop the line.
                self._pending_lines[name] = value
                return True
            return False

        done = self._in_loop(on_live, fallback=lambda: False)
        if not done:
            if _NETWORK_URL.search(self.url) and _in_any_trio_thread():
                # DNS, a TCP connect and RFC 2217 negotiation would run on the loop.
                raise RuntimeError(
                    f"set_{name}() on {self.url!r} with no live connection would open a "
                    f"network connection on the event loop: set it on a live connection "
                    f"(async with driver.connect()), or call this from a worker thread "
                    f"(trio.to_thread.run_sync)"
                )
            core = self._open_blocking(self.url)
            try:
                act(core)
            finally:
                core.close()
            setattr(self, f"_{name}", value)
            self._pending_lines.pop(name, None)

    def _handles(self) -> list[PortCore]:
        cores: list[PortCore] = []
        if self._line is not None:
            cores.append(self._line.core)
        cores += [s._core for s in self._others if not s._core.closed]
        cores += [s._core for s in self._supervisors if s._core is not None]
        return cores

    # ----------------------------------------------------------- supervise

    async def run(
        self,
        *,
        initial_backoff: float = 0.1,
        max_backoff: float = 5.0,
        buffer_size: int = 65536,
        modem_poll_interval: float | None = None,
        task_status: trio.TaskStatus[SupervisedStream] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Supervise the port: ``port = await nursery.start(driver.run)``.

        Opens the port and hands back a :class:`SupervisedStream` that
        outlives the device: when it disappears (hangup, ``EIO``, USB unplug)
        the supervisor closes the fd and tries again after *initial_backoff*
        seconds, doubling the wait after each failure up to *max_backoff*.
        A device path that has a ``/dev/serial/by-id`` link is reopened
        through the link, so a replug that renumbers the tty is followed;
        without one (containers often have no udev), a USB adapter with a
        serial number is found again by VID, PID and serial number
        (:func:`serial.tools.list_ports.comports`, in a worker thread).

        ``nursery.start`` returns after the first open. If the device is
        absent then (:exc:`~trioserial.PortNotFoundError`), it returns at once
        with ``port.connected`` false and keeps trying; any other error of
        the first open (permission, not a tty, bad settings) is raised from
        ``nursery.start``. Later errors only go to ``port.last_error``.

        Returns when :meth:`PySerial.close` or ``port.aclose()`` stops it.
        Cancellation (of the nursery) shuts it down promptly: the fd is
        closed, and the stream's receivers get what was buffered, then
        ``b""``.

        Args:
          initial_backoff: seconds before the first retry (> 0).
          max_backoff: the longest wait between retries (>= *initial_backoff*).
          buffer_size: the most input held while nobody reads (>= 1).
          modem_poll_interval: watch the input lines (CTS, DSR, RI, CD) with
            :meth:`AsyncSerial.wait_modem_change` at this interval, and publish
            every change in ``port.modem_lines``. ``None`` (the default): read
            them at each connect and after ``set_dtr``/``set_rts`` only, so an
            idle port costs no CPU. Ignored where there are no modem lines.
          task_status: given by ``nursery.start``.
        """
        intervals = [("initial_backoff", initial_backoff), ("max_backoff", max_backoff)]
        if modem_poll_interval is not None:
            intervals.append(("modem_poll_interval", modem_poll_interval))
        for name, val in intervals:
            if isinstance(val, bool) or not isinstance(val, int | float):
                raise TypeError(f"{name} must be a number of seconds, got {val!r}")
            if not (math.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be > 0 seconds, got {val!r}")
        if max_backoff < initial_backoff:
            raise ValueError(
                f"max_backoff must be >= initial_backoff ({initial_backoff!r}), got {max_backoff!r}"
            )
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int):
            raise TypeError(f"buffer_size must be an int >= 1, got {buffer_size!r}")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be an int >= 1, got {buffer_size!r}")
        self._claim_token()
        port = SupervisedStream(self, buffer_size)
        self._supervisors.add(port)
        try:
            with port._scope:
                await port._supervise(
                    float(initial_backoff),
                    float(max_backoff),
                    None if modem_poll_interval is None else float(modem_poll_interval),
                    task_status,
                )
        finally:
            self._supervisors.discard(port)
            port._shut_down()


# ----------------------------------------------------------------- run()


@final
class SupervisedStream(trio.abc.Stream):
    """The port as :meth:`PySerial.run` supervises it: a stream that survives reconnects.

    One task (the supervisor) reads the device into a buffer of at most
    ``buffer_size`` bytes; when the buffer is full it stops reading, so the
    OS (and, with flow control, the device) is held back instead of memory
    growing. A consequence: while the buffer is full and nobody reads, a
    hangup is only noticed once reading resumes.

    **Across a reconnect.** :meth:`receive_some` never reports a hangup: it
    returns what was buffered before the device went away, then waits for
    the next connection. Input still in the kernel at the hangup is lost (the
    kernel discards it; nothing can recover it), so a reconnect is a gap in
    the data: watch ``connected`` (or ``connect_count``) to know
    where. :meth:`send_all` waits while disconnected; a send cut off by a
    hangup raises :exc:`trio.BrokenResourceError` (a prefix went out, see
    :meth:`statistics`) and, unlike other Trio streams, the stream stays
    usable: the next send goes to the next connection.

    **End of stream.** When supervision stops (:meth:`PySerial.close`, the
    nursery is cancelled), receivers get the buffered data, then ``b""``;
    after :meth:`aclose` they get :exc:`trio.ClosedResourceError`.

    Attributes:
      connected: ``trio_util.AsyncBool``, true while the device is open.
      modem_lines: ``trio_util.AsyncValue`` of the last
        :class:`~trioserial.ModemLines` read (``None`` where the transport has
        none, such as a pty).
      last_error: ``trio_util.AsyncValue`` of the last failure (an
        :exc:`OSError`: hangup or open error), or ``None``. Every failure is a
        new value, so ``wait_transition()`` sees each one.
      connect_count: how many times the device has been opened so far.
      path: the device path or URL being opened (a ``/dev/serial/by-id``
        link when one was found).
    """

    def __init__(self, driver: PySerial, buffer_size: int) -> None:
        """Made by :meth:`PySerial.run`."""
        self._driver = driver
        self._buffer_size = buffer_size
        self._buffer = bytearray()
        self._serial: AsyncSerial | None = None
        self._core: PortCore | None = None
        self._readers = trio.lowlevel.ParkingLot()
        self._room = trio.lowlevel.ParkingLot()
        self._changed = trio.lowlevel.ParkingLot()
        self._scope = trio.CancelScope()
        self._ended = False
        self._user_closed = False
        self._eof_sent = False
        self._send_conflict = ConflictDetector(
            "another task is using this serial port for send", trio.BusyResourceError
        )
        self._receive_conflict = ConflictDetector(
            "another task is using this serial port for receive", trio.BusyResourceError
        )
        self._pacer = _Pacer(driver.cps) if driver.cps else None
        self._bytes_sent = 0
        self._bytes_received = 0
        self.connect_count = 0
        self.path = driver.url
        self.connected = trio_util.AsyncBool(False)  # type: ignore[no-untyped-call]
        self.modem_lines: trio_util.AsyncValue[ModemLines | None] = trio_util.AsyncValue(None)
        self.last_error: trio_util.AsyncValue[OSError | None] = trio_util.AsyncValue(None)

    # ------------------------------------------------------- supervisor side

    async def _supervise(
        self,
        initial_backoff: float,
        max_backoff: float,
        modem_poll_interval: float | None,
        task_status: trio.TaskStatus[SupervisedStream],
    ) -> None:
        driver = self._driver
        self.path = await trio.to_thread.run_sync(stable_path, driver.url, BY_ID_DIR)
        identity: UsbIdentity | None = None
        started = False
        delay: float | None = None  # None: try at once
        while True:
            if delay is not None:
                await trio.sleep(delay)
            try:
                core, self.path, identity = await driver._open_in_thread(
                    functools.partial(self._open_blocking, self.path, identity),
                    lambda opened: opened[0],
                )
            except SerialPortError as exc:
                if not started and not isinstance(exc, PortNotFoundError):
                    raise
                self.last_error.value = exc
                if not started:
                    started = True
                    task_status.started(self)
                delay = initial_backoff if delay is None else min(delay * 2, max_backoff)
                continue
            if self._ended:  # stopped while the open ran: hand the fd back at once
                core.close()
                if not started:
                    task_status.started(self)
                return
            self._attach(core)
            if not started:
                started = True
                task_status.started(self)
            async with trio.open_nursery() as nursery:
                if modem_poll_interval is not None and self.modem_lines.value is not None:
                    nursery.start_soon(self._watch_modem_lines, modem_poll_interval)
                error = await self._pump()
                nursery.cancel_scope.cancel()
            self._detach()
            self.last_error.value = error
            # A device that has just gone away is not back yet: give it a moment.
            delay = initial_backoff

    def _open_blocking(
        self, path: str, identity: UsbIdentity | None, options: OpenOptions
    ) -> tuple[PortCore, str, UsbIdentity | None]:
        """Open the device where it is now. Blocking: runs in a worker thread.

        When *path* is gone but the USB adapter it was (*identity*) is
        plugged in under another name, open that one. Returns the core, the
        path opened and the adapter's identity (found on the first open).
        """
        try:
            core = self._driver._open_blocking(path, options)
        except PortNotFoundError:
            moved = find_usb_port(identity) if identity is not None else None
            if moved is None or moved == path:
                raise
            core, path = self._driver._open_blocking(moved, options), moved
        if identity is None:
            try:
                identity = usb_identity(path)
            except Exception:  # enumeration trouble must not lose an open port
                identity = None
        return core, path, identity

    def _attach(self, core: PortCore) -> None:
        self._core = core
        self._serial = AsyncSerial(core)
        self.connect_count += 1
        self._publish_modem_lines()
        self.connected.value = True
        self._changed.unpark_all()

    def _detach(self) -> None:
        serial, self._serial, self._core = self._serial, None, None
        if serial is not None:
            serial.close()
        self.connected.value = False
        self._changed.unpark_all()
        self._readers.unpark_all()

    def _publish_modem_lines(self) -> None:
        core = self._core
        if core is None:
            return
        try:
            self.modem_lines.value = core.modem_lines()
        except (UnsupportedOperationError, OSError):
            self.modem_lines.value = None

    async def _watch_modem_lines(self, interval: float) -> None:
        serial = self._serial
        assert serial is not None
        while True:
            try:
                # Publish the levels the wait starts from (read in the same task
                # step as the wait's own first read), so no change falls between.
                self.modem_lines.value = serial.modem_lines()
                await serial.wait_modem_change(poll_interval=interval)
            except (trio.ClosedResourceError, SerialPortError):
                return  # gone: the pump notices and reconnects

    async def _pump(self) -> OSError:
        """Move input into the buffer until the device goes away; return why it did."""
        serial = self._serial
        assert serial is not None
        while True:
            while len(self._buffer) >= self._buffer_size:
                await self._room.park()
            try:
                data = await serial.receive_some(self._buffer_size - len(self._buffer))
            except trio.ClosedResourceError:
                if self._ended:
                    await trio.sleep_forever()  # _stop() cancelled us: this raises Cancelled
                # Someone closed port.serial: a disconnect like any other.
                return SerialPortError(
                    f"serial port {self.path!r} was closed outside the supervisor",
                    port=self.path,
                    errno=errno.EBADF,
                )
            except trio.BrokenResourceError as exc:
                cause = exc.__cause__
                if isinstance(cause, OSError):
                    return cause
                return SerialPortError(str(exc), port=self.path)
            if not data:
                return SerialPortError(
                    f"serial port {self.path!r} hung up", port=self.path, errno=errno.EIO
                )
            self._buffer += data
            self._readers.unpark_all()

    def _stop(self) -> None:
        """Stop supervising now: close the fd, wake everyone. Trio thread."""
        self._shut_down()
        self._scope.cancel()

    def _shut_down(self) -> None:
        self._ended = True
        if self._serial is not None:
            self._detach()
        self._readers.unpark_all()
        self._room.unpark_all()
        self._changed.unpark_all()

    # ------------------------------------------------------------- user side

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return 1 to *max_bytes* bytes of input, waiting across reconnects.

        Returns ``b""`` only once supervision has stopped and the buffer is
        empty. Always a checkpoint.

        Cancellation: a cancelled receive has consumed nothing.

        Raises:
          trio.ClosedResourceError: :meth:`aclose` was called.
          trio.BusyResourceError: another task is receiving.
          TypeError, ValueError: *max_bytes* is not an int >= 1.
        """
        with self._receive_conflict:
            n = check_max_bytes(max_bytes)
            await trio.lowlevel.checkpoint_if_cancelled()
            waited = False
            while not self._buffer:
                if self._user_closed:
                    raise trio.ClosedResourceError("serial port was closed")
                if self._ended:
                    break
                waited = True
                await self._readers.park()
            if self._user_closed:
                raise trio.ClosedResourceError("serial port was closed")
            # No checkpoint from the last wait to the return: nothing taken is lost.
            data = bytes(self._buffer[:n])
            del self._buffer[:n]
            self._bytes_received += len(data)
            self._room.unpark_all()
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    async def receive(self, max_bytes: int = DEFAULT_RECEIVE_SIZE) -> bytes:
        """Like :meth:`receive_some`, raising :exc:`trio.EndOfChannel` instead of ``b""``.

        Cancellation: a cancelled receive has consumed nothing.
        """
        data = await self.receive_some(max_bytes)
        if not data:
            raise trio.EndOfChannel(f"supervision of {self.path!r} has stopped")
        return data

    def __aiter__(self) -> SupervisedStream:
        return self

    async def __anext__(self) -> bytes:
        """``async for chunk in port``: chunks until supervision stops."""
        data = await self.receive_some()
        if not data:
            raise StopAsyncIteration
        return data

    def _check_can_send(self) -> None:
        if self._user_closed or self._ended:
            raise trio.ClosedResourceError("serial port was already closed")
        if self._eof_sent:
            raise trio.ClosedResourceError("can't send data after sending EOF")

    async def _wait_serial(self) -> AsyncSerial:
        while True:
            self._check_can_send()
            if self._serial is not None:
                return self._serial
            await self._changed.park()

    async def send_all(self, data: Buffer) -> None:
        """Send all of *data* to the device, waiting while it is disconnected.

        Throttled when the driver has ``cps``. Always a checkpoint.

        Cancellation: a prefix of *data* went out, and
        ``statistics().bytes_sent`` grew by exactly its length.

        Raises:
          trio.BrokenResourceError: the device went away during the send (a
            prefix may have gone out); the stream stays usable, and the next
            send waits for the next connection.
          trio.ClosedResourceError: supervision stopped, :meth:`aclose` or
            :meth:`send_eof` was called.
          trio.BusyResourceError: another task is sending.
          TypeError: *data* is not bytes-like.
        """
        with self._send_conflict, byte_view(data) as view:
            await trio.lowlevel.checkpoint_if_cancelled()
            serial = await self._wait_serial()
            before = serial.statistics().bytes_sent
            try:
                if self._pacer is None:
                    await serial.send_all(view)
                else:
                    await _paced_send(serial, view, self._pacer)
            except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
                self._check_can_send()
                raise trio.BrokenResourceError(
                    f"serial port {self.path!r} went away during the send"
                ) from exc
            finally:
                self._bytes_sent += serial.statistics().bytes_sent - before

    async def send(self, data: Buffer) -> None:
        """The same as :meth:`send_all`."""
        await self.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until connected and the OS output buffer has room.

        Cancellation leaves nothing behind.
        """
        with self._send_conflict:
            serial = await self._wait_serial()
            try:
                await serial.wait_send_all_might_not_block()
            except trio.ClosedResourceError:
                self._check_can_send()  # else: it went away; a send will wait

    async def send_eof(self) -> None:
        """Stop sending from this side; receiving goes on. The device is not told.

        Idempotent; always a checkpoint. Cancellation: a cancelled call changed nothing.
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint()
            if self._user_closed:
                raise trio.ClosedResourceError("serial port was already closed")
            self._eof_sent = True

    async def aclose(self) -> None:
        """Stop supervising and close the port. Idempotent; closes even if cancelled.

        Receivers then get :exc:`trio.ClosedResourceError`; ``run()`` returns.
        """
        self._user_closed = True
        self._stop()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> SerialStatistics:
        """Counters over all connections of this supervision."""
        return SerialStatistics(
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
            tasks_waiting_receive=len(self._readers),
            tasks_waiting_send=len(self._changed),
        )

    @property
    def serial(self) -> AsyncSerial | None:
        """The current connection's port (for the control surface), or ``None`` while down.

        Do not read from it: the supervisor does. Closing it ends this
        connection like a hangup: the supervisor opens the port again after
        *initial_backoff*.
        """
        return self._serial

    @property
    def buffered(self) -> int:
        """Bytes received from the device and not read yet (at most ``buffer_size``)."""
        return len(self._buffer)

    def __repr__(self) -> str:
        state = "connected" if self.connected.value else "disconnected"
        return f"<trioserial.SupervisedStream {self.path!r} {state}>"

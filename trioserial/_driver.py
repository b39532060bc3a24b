"""``PySerial``: a configured serial port that lives for the whole program (layer 3).

The driver holds a port's configuration, the DTR/RTS levels asked for, and
the handles opened from it: ``connect()`` hands out streams
(:mod:`trioserial._connection`), ``run()`` supervises the port
(:mod:`trioserial._supervised`), ``close()`` takes them all back from any
thread, and ``set_dtr``/``set_rts`` act on the live handle.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final, TypeVar, final

import attrs
import trio

from ._connection import Connections, DriverStream
from ._core import PortCore
from ._errors import UnsupportedOperationError
from ._open import check_url, open_core, opens_on_loop
from ._open_async import open_core_async
from ._options import OpenOptions
from ._pacing import check_cps
from ._portinfo import PortQuery
from ._presence import check_present as _check_present
from ._settings import SerialSettings, SettingsChanges, Unpack
from ._supervised import SupervisedStream, Supervisor
from ._trio_loop import TRIO_PRIMITIVES
from ._usb import UsbIdentity, find_port, open_following
from ._util import check_bool

__all__ = ["PySerial"]

logger: Final = logging.getLogger("trioserial.driver")

T = TypeVar("T")

#: URLs whose open goes over the network (also behind spy://).
_NETWORK_URL: Final = re.compile(r"(^|://)(socket|rfc2217)://", re.IGNORECASE)


def _is_url(url: str | None) -> bool:
    return url is not None and "://" in url


def _set_dtr(core: PortCore, value: bool) -> None:
    core.set_dtr(value)


def _set_rts(core: PortCore, value: bool) -> None:
    core.set_rts(value)


@attrs.define
class _Level:
    """What ``set_dtr()`` or ``set_rts()`` asked for, for one output line."""

    name: str
    set_on: Callable[[PortCore, bool], None]
    #: The level every open applies (``None``: leave the line as the open sets it).
    value: bool | None = None
    #: A level asked for while no handle was open, so not yet known to be
    #: possible on this device; the next open takes it or drops it.
    pending: bool | None = None


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
        or a ``scheme://`` URL. Omit it to name a USB adapter by its identity
        instead (:ref:`driver-usb-identity`).
      vid: the USB vendor id of the adapter to open, such as ``0x0403``.
      pid: its USB product id.
      serial_number: its USB serial number string (what tells twin adapters
        apart). With any of *vid*, *pid*, *serial_number* (and no *url*),
        every open looks the adapter up in sysfs, as
        :func:`~trioserial.wait_for_port` does, and opens whatever device
        node the kernel gave it this time.
      check_present: fail now if the device path does not exist or is not a
        character device (``scheme://`` URLs always count as present).
        ``False`` allows a port that appears later, such as the USB serial of
        a board that is not powered yet. Unlike Jumpstarter, the check does
        not open the port (an open toggles DTR and can reset the board).
      cps: throttle sending to this many characters per second (``None`` or
        ``0``: no throttle). For devices whose input cannot keep up, such as a
        bootloader prompt typed into without flow control.
      disable_hupcl: clear ``HUPCL`` after every open, so that closing the
        port does not drop DTR/RTS (which resets many boards).
      settings: ``baudrate`` (bits per second, default 115200, as
        Jumpstarter's), ``bytesize``, ``parity``, ``stopbits``, ``xonxoff``,
        ``rtscts``, ``dsrdtr``, ``exclusive``: see
        :class:`~trioserial.SerialSettings` and
        :class:`~trioserial.SettingsChanges`.

    Raises:
      TypeError, ValueError: a malformed option (the message names it).
      trioserial.UnsupportedURLError: an unknown URL scheme.
      trioserial.PortNotFoundError: *check_present* and the path does not
        exist, or no adapter with the USB identity is plugged in.
      trioserial.NotASerialPortError: *check_present* and the path is not a device.
      trioserial.AmbiguousPortError: *check_present* and more than one
        adapter matches the USB identity.
    """

    #: The device path or URL; ``None`` for a port named by its USB identity.
    url: str | None = attrs.field(on_setattr=attrs.setters.frozen)
    vid: int | None = attrs.field(on_setattr=attrs.setters.frozen)
    pid: int | None = attrs.field(on_setattr=attrs.setters.frozen)
    serial_number: str | None = attrs.field(on_setattr=attrs.setters.frozen)
    baudrate: int = attrs.field(on_setattr=attrs.setters.frozen)
    check_present: bool = attrs.field(on_setattr=attrs.setters.frozen)
    cps: float | None = attrs.field(on_setattr=attrs.setters.frozen)
    disable_hupcl: bool = attrs.field(on_setattr=attrs.setters.frozen)
    #: The complete line settings (``baudrate`` included).
    settings: SerialSettings = attrs.field(on_setattr=attrs.setters.frozen)

    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _token: trio.lowlevel.TrioToken | None = attrs.field(init=False, default=None)
    _connections: Connections = attrs.field(init=False)
    _supervisors: set[Supervisor] = attrs.field(init=False, factory=set)
    _open_lock: trio.Lock = attrs.field(init=False, factory=trio.Lock)
    _closes: int = attrs.field(init=False, default=0)
    _opening: int = attrs.field(init=False, default=0)
    #: The scopes of the connect() opens under way: close() cancels them.
    _open_scopes: set[trio.CancelScope] = attrs.field(init=False, factory=set)
    _dtr: _Level = attrs.field(init=False, factory=lambda: _Level("DTR", _set_dtr))
    _rts: _Level = attrs.field(init=False, factory=lambda: _Level("RTS", _set_rts))

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        vid: int | None = None,
        pid: int | None = None,
        serial_number: str | None = None,
        check_present: bool = True,
        cps: float | None = None,
        disable_hupcl: bool = False,
        **settings: Unpack[SettingsChanges],
    ) -> None:
        query = PortQuery(vid=vid, pid=pid, serial_number=serial_number)
        by_identity = (vid, pid, serial_number) != (None, None, None)
        if url is None and not by_identity:
            raise TypeError(
                "PySerial needs a url (a device path or scheme:// URL) "
                "or a USB identity (vid=, pid=, serial_number=)"
            )
        if url is not None and by_identity:
            raise TypeError(
                f"PySerial takes a url or a USB identity, not both: got url={url!r} "
                f"and {query.describe()}"
            )
        if url is not None:
            url = check_url(url)
        line_settings = SerialSettings().replace(**settings)
        check_present = check_bool("check_present", check_present)
        disable_hupcl = check_bool("disable_hupcl", disable_hupcl)
        cps = check_cps(cps)
        if check_present and url is None:
            find_port(query)
        elif check_present and url is not None and not _is_url(url):
            _check_present(url)
        self.__attrs_init__(
            url=url,
            vid=vid,
            pid=pid,
            serial_number=serial_number,
            baudrate=line_settings.baudrate,
            check_present=check_present,
            cps=cps,
            disable_hupcl=disable_hupcl,
            settings=line_settings,
        )
        self._connections = Connections(cps)

    def __repr__(self) -> str:
        cps = f" cps={self.cps:g}" if self.cps else ""
        return f"<trioserial.PySerial {self._name} {self.settings.framing}{cps}>"

    @property
    def _name(self) -> str:
        """The port as messages name it: its URL, or its USB identity."""
        return repr(self.url) if self.url is not None else self._query.describe()

    @property
    def _query(self) -> PortQuery:
        return PortQuery(vid=self.vid, pid=self.pid, serial_number=self.serial_number)

    # ------------------------------------------------------------ opening

    def _open_options(self, url: str | None) -> OpenOptions:
        # What set_dtr()/set_rts() asked for outlives the handle they acted on:
        # every later open (connect, brief open, reconnect) puts the lines back.
        return OpenOptions(
            dtr=self._dtr.value,
            rts=self._rts.value,
            hupcl=False if self.disable_hupcl and not _is_url(url) else None,
        )

    def _open_blocking(self, url: str | None, options: OpenOptions | None = None) -> PortCore:
        """Open a handle with our settings and open-time options. Blocking: use a thread.

        *url* ``None``: the adapter our USB identity names, wherever it is now.
        """
        options = options or self._open_options(url)
        return open_core(find_port(self._query) if url is None else url, self.settings, options)

    async def _open_port(self, url: str | None, options: OpenOptions) -> PortCore:
        """Open *url* with our settings. Trio thread.

        As :func:`trioserial.open_serial_port` opens (``_open_async``): a
        network port (``socket://``, ``rfc2217://``, also under ``spy://``)
        connects and negotiates on the event loop, and a cancellation ends it
        at once, its socket closed; a pty slave opens on the loop in one step;
        any other device opens in a worker thread, which runs to its end, and
        is closed again if a cancellation came meanwhile. With no *url*, the
        adapter our USB identity names is looked up and opened in a thread.
        """
        if url is None:
            return await trio.to_thread.run_sync(self._open_blocking, url, options)
        return await open_core_async(url, self.settings, options, TRIO_PRIMITIVES, opener=open_core)

    async def _open_with_levels(
        self, open_with: Callable[[OpenOptions], Awaitable[T]], core_of: Callable[[T], PortCore]
    ) -> T:
        """Run the open *open_with*, then apply what set_dtr/set_rts asked for
        while it ran. Trio thread.

        Meanwhile set_dtr/set_rts only remember the level (a brief open beside
        this one would fight it for the lock); the options are fixed before
        the open starts, so what changed since is applied here, with no
        checkpoint before the caller registers the handle.
        """
        options = self._open_options(self.url)
        self._opening += 1
        try:
            result = await open_with(options)
        finally:
            self._opening -= 1
        core = core_of(result)
        try:
            self._apply_level(core, self._dtr, options.dtr)
            self._apply_level(core, self._rts, options.rts)
        except BaseException:
            core.close()
            raise
        return result

    def _apply_level(self, core: PortCore, level: _Level, opened_with: bool | None) -> None:
        """Give the just-opened *core* the level asked for since its options
        were fixed. Trio thread, no checkpoint.

        A level remembered while no handle was open was never tried on this
        device: if it has no such line (a pty, a plain socket), the level is
        dropped with a warning instead of failing this open and every later
        one. Once taken, it is re-applied on every later open.
        """
        pending, level.pending = level.pending, None
        want = level.value if pending is None else pending
        if want is None:
            return
        if want != opened_with:
            try:
                level.set_on(core, want)
            except UnsupportedOperationError as exc:
                if pending is None:
                    raise
                logger.warning("%s: cannot set %s, level dropped: %s", self._name, level.name, exc)
                return
        level.value = want

    async def _open_supervised(
        self, path: str, identity: UsbIdentity | None
    ) -> tuple[PortCore, str, UsbIdentity | None]:
        """The supervisor's open: *path*, or where its USB adapter moved.

        A network port opens on the event loop, so the supervisor's stop
        (and any cancellation) ends it at once.
        """

        def by_identity(options: OpenOptions) -> tuple[PortCore, str, UsbIdentity | None]:
            device = find_port(self._query)  # looked up afresh for each open
            return self._open_blocking(device, options), device, None

        async def open_there(options: OpenOptions) -> tuple[PortCore, str, UsbIdentity | None]:
            if self.url is None:
                return await trio.to_thread.run_sync(by_identity, options)
            if opens_on_loop(path):
                return await self._open_port(path, options), path, None
            return await trio.to_thread.run_sync(
                open_following,
                path,
                identity,
                functools.partial(self._open_blocking, options=options),
            )

        return await self._open_with_levels(open_there, lambda opened: opened[0])

    def _claim_token(self) -> trio.lowlevel.TrioToken:
        token = trio.lowlevel.current_trio_token()
        with self._lock:
            if self._token is not None and self._token is not token and self._live():
                raise RuntimeError(f"{self!r} is already in use by another trio.run()")
            self._token = token
        return token

    def _live(self) -> bool:
        return bool(self._connections) or bool(self._supervisors)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[DriverStream]:
        """Open the port and yield it as a :class:`DriverStream`.

        Any number of connections may be live at once. On a tty they share
        one open of the device (see :doc:`driver`): the first ``connect()``
        opens it (with the ``exclusive`` lock, if set), the others get
        duplicates of that file descriptor, so no second open re-asserts
        DTR/RTS, re-applies settings or fights over the lock; the device is
        closed when the last connection ends. A URL transport without a file
        to duplicate opens a new connection each time.

        No task group or cancel scope spans the ``yield``: the body runs in
        the caller's own task.

        Leaving the block closes the connection as :meth:`DriverStream.aclose`
        does: output the body sent and the device has not taken yet is given
        time to go out (twice what it takes at the line rate, at least a
        second), so a last command is not discarded by the close.

        A :meth:`close` while the port is opening covers this connection
        too: it is yielded at end of stream (see :meth:`close`).

        Cancellation: the body never runs. The port opens as
        :func:`trioserial.open_serial_port` opens it: a network port's open
        (on the event loop) ends at once, its socket closed; a pty slave
        under ``/dev`` opens on the loop in one step; any other device opens
        in a worker thread that cannot be interrupted, so a cancellation that
        arrives meanwhile waits for it, closes the port again, and is then
        raised. Leaving the block cancelled closes the connection at once
        (queued output is discarded). No fd leaks.

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
                self._connections.release(stream)

    async def _open_connection(self) -> DriverStream:
        self._claim_token()
        closes = self._closes
        async with self._open_lock:
            stream = self._connections.share_line()
            if stream is None:
                core = await self._open_unless_closed() if self._closes == closes else None
                if core is None:  # close() came first: a connection at end of stream
                    name = self.url or self._query.describe()
                    stream = self._connections.unopened(name, self.settings)
                else:
                    stream = self._connections.adopt(core)
        if self._closes != closes:
            # close() ran while we were opening: that close covers this connection too.
            self._connections.end(stream)
        return stream

    async def _open_unless_closed(self) -> PortCore | None:
        """A connection's open; ``None`` if :meth:`close` cut it short.

        Only an open on the event loop (a network port) can be cut short; a
        caller's own cancellation ends it too, and is raised.
        """
        with trio.CancelScope() as scope:
            self._open_scopes.add(scope)
            try:
                return await self._open_with_levels(
                    functools.partial(self._open_port, self.url), lambda core: core
                )
            finally:
                self._open_scopes.discard(scope)
        await trio.lowlevel.checkpoint_if_cancelled()  # the caller's, if it came too
        return None

    # --------------------------------------------------------------- close

    def close(self) -> None:
        """Close every connection and supervised port of this driver.

        Sync, idempotent, and safe to call from any thread: from the Trio
        thread it acts at once; from another thread it asks the Trio thread
        to act (:func:`trio.from_thread.run_sync`) and waits for it (see
        :doc:`driver` for what that means for a Trio thread that is
        blocked). Either way, when it returns every fd is closed. Blocked
        receivers wake with end of stream (``b""`` /
        :exc:`trio.EndOfChannel`), not an error; blocked senders get
        :exc:`trio.ClosedResourceError`; supervised ``run()`` tasks return.
        The driver stays usable: a later :meth:`connect` opens the port again.

        Output still queued in the OS is discarded (see
        :meth:`AsyncSerial.close`). A ``connect()`` still opening yields a
        connection at end of stream: a network open is cut short at once
        (that connection never had an fd); a device's open in its worker
        thread cannot be interrupted, so its fd is closed as soon as the
        open returns. A supervised ``run()`` stopped in its first open hands
        back an ended port.
        """
        self._in_loop(self._close_now, fallback=self._close_without_loop)

    def _close_now(self) -> None:
        self._closes += 1
        for scope in self._open_scopes:
            scope.cancel()
        self._connections.end_all()
        for supervisor in list(self._supervisors):
            supervisor.stop()

    def _close_without_loop(self) -> None:
        # The trio.run() that owned the handles has ended: nobody can be
        # blocked on them, so closing the fds directly is all there is to do.
        self._closes += 1
        self._connections.abandon_all()

    def _in_loop(self, fn: Callable[[], T], *, fallback: Callable[[], T]) -> T:
        """Run *fn* in the Trio thread that owns our handles, and wait for it.

        *fallback* instead when that ``trio.run()`` has finished.
        """
        with self._lock:
            token = self._token
        if token is None or (
            trio.lowlevel.in_trio_run() and trio.lowlevel.current_trio_token() is token
        ):
            return fn()
        try:
            return trio.from_thread.run_sync(fn, trio_token=token)
        except trio.RunFinishedError:
            return fallback()

    # ---------------------------------------------------------- DTR / RTS

    def set_dtr(self, value: bool) -> None:
        """Drive DTR; remembered and re-applied on every later open.

        With a connection (or a supervised port) live, this is one ioctl on
        its handle: no second open that would re-assert the lines or flush
        input. While an open is under way or a supervised port is
        reconnecting, the level is only remembered: that open sets it (or,
        on a device without that line, drops it with a warning). With
        nothing open and nothing supervised, the port is opened briefly, in
        the calling thread, to set the line (a non-blocking open that does
        not wait for carrier); closing it again drops DTR/RTS unless
        ``disable_hupcl``. Sync and safe from any thread, like :meth:`close`;
        except that a ``socket://`` or ``rfc2217://`` port with nothing open
        is refused in the Trio thread, where its brief open (DNS, connect,
        negotiation) would block the event loop.

        Raises:
          TypeError: *value* is not a bool.
          RuntimeError: a network port with nothing open, called in the Trio
            thread.
          trioserial.UnsupportedOperationError: the port has no modem lines
            (a pty, a plain socket).
          trioserial.SerialPortError: the brief open failed.
        """
        self._set_level(self._dtr, check_bool("dtr", value))

    def set_rts(self, value: bool) -> None:
        """Drive RTS; the same rules as :meth:`set_dtr`."""
        self._set_level(self._rts, check_bool("rts", value))

    def _set_level(self, level: _Level, value: bool) -> None:
        def on_live() -> bool:
            handles = self._handles()
            for core in handles:
                level.set_on(core, value)
            for supervisor in self._supervisors:
                supervisor.publish_modem_lines()
            if handles:
                level.value, level.pending = value, None
                return True
            if self._supervisors or self._opening:
                # An open under way, or a supervised port between connections:
                # that open (or the next one) applies the level. A brief open now
                # would be a second handle racing it for the lock, and its close
                # would drop the line.
                level.pending = value
                return True
            return False

        if self._in_loop(on_live, fallback=lambda: False):
            return
        if _NETWORK_URL.search(self.url or "") and trio.lowlevel.in_trio_run():
            # DNS, a TCP connect and RFC 2217 negotiation would run on the loop.
            raise RuntimeError(
                f"set_{level.name.lower()}() on {self.url!r} with no live connection would "
                f"open a network connection on the event loop: set it on a live connection "
                f"(async with driver.connect()), or call this from a worker thread "
                f"(trio.to_thread.run_sync)"
            )
        core = self._open_blocking(self.url)
        try:
            level.set_on(core, value)
        finally:
            core.close()
        level.value, level.pending = value, None

    def _handles(self) -> list[PortCore]:
        cores = self._connections.cores()
        return cores + [s.core for s in self._supervisors if s.core is not None]

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
        the supervisor closes the fd, logs a warning on the
        ``trioserial.driver`` logger, and tries again when the kernel's device
        events say a port appeared or a link changed (:doc:`ports`), or at the
        latest after *initial_backoff* seconds, doubling that bound after each
        failure up to *max_backoff* (``scheme://`` URLs: on the timer alone).
        A device path that has a ``/dev/serial/by-id`` link is reopened
        through the link, so a replug that renumbers the tty is followed;
        without one (containers often have no udev), a USB adapter with a
        serial number is found again by VID, PID, serial number and
        interface (read from sysfs in a worker thread).

        ``nursery.start`` returns after the first open. If the device is
        absent then (:exc:`~trioserial.PortNotFoundError`), it returns at once
        with ``port.connected`` false and keeps trying; any other error of
        the first open (permission, not a tty, bad settings) is raised from
        ``nursery.start``. Later errors only go to ``port.last_error``.

        Returns when :meth:`PySerial.close` or ``port.aclose()`` stops it;
        a network port's open (on the event loop) is cut short at once, and
        one stopped in the first open makes ``nursery.start`` return an
        ended port. Cancellation (of the nursery) shuts it down promptly:
        the fd is closed (an open on the event loop ends at once), and the
        stream's receivers get what was buffered, then ``b""``.

        Args:
          initial_backoff: the longest wait before the first retry when no
            device event comes (> 0).
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
        supervisor = Supervisor(
            self.url or self._query.describe(),
            self.cps,
            buffer_size,
            self._open_supervised,
            by_identity=self.url is None,
        )
        self._supervisors.add(supervisor)
        try:
            await supervisor.run(
                float(initial_backoff),
                float(max_backoff),
                None if modem_poll_interval is None else float(modem_poll_interval),
                task_status,
            )
        finally:
            self._supervisors.discard(supervisor)

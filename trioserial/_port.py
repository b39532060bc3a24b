"""The tty port core: a local serial device opened non-blocking (layer 1).

Never imports trio or anyio. :meth:`TtyPort.open` may block (``open(2)`` on
a tty can wait for the driver), so front ends run it in a worker thread;
every other method is a non-blocking syscall.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import platform
import select
import sys
import termios
from typing import Final

import attrs

from . import _termios
from ._core import PortCore
from ._errors import (
    NotASerialPortError,
    PortBusyError,
    SerialPortError,
    UnsupportedOperationError,
    open_error,
)
from ._options import OpenOptions, RS485Settings
from ._settings import ModemLines, Parity, SerialSettings
from ._termios import INT, Ioctl, os_ioctl

__all__ = ["TtyPort"]

#: TIOCINQ's argument (input_pending, on every receive of anyio on asyncio).
_INT_ZERO: Final = INT.pack(0)
_OPEN_FLAGS: Final = os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
DEFAULT_OPEN_OPTIONS: Final = OpenOptions()
_HANGUP: Final = select.POLLHUP | select.POLLERR | select.POLLNVAL
#: What a driver says when it has no such feature (a pty has no modem lines).
_UNSUPPORTED_ERRNOS: Final = frozenset({errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP})
#: A read at least this long found the line discipline's buffer (4 KiB on
#: Linux) full or nearly so: more input is probably queued behind it.
_FULL_READ: Final = 2048


def is_hung_up(fd: int) -> bool:
    """Whether *fd*'s other end has gone (pty master closed, USB device unplugged)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(events & _HANGUP for _, events in poller.poll(0))


class TtyPort(PortCore):
    """A local terminal device: UART, USB-serial adapter or pty slave."""

    transport = "tty"

    def __init__(
        self, fd: int, name: str, settings: SerialSettings, *, ioctl: Ioctl = os_ioctl
    ) -> None:
        """Take ownership of the open, non-blocking tty *fd*. Use :meth:`open` instead."""
        self._fd = fd
        self.name = name
        self.settings = settings
        #: The seam below the control surface: every modem-line, break, queue
        #: and flush request goes through it (see ``_termios.Ioctl``).
        self.ioctl = ioctl
        self._break = False
        self._excl = False  # we set TIOCEXCL: clear it again on close
        self._icount = True  # until the driver says it keeps no counters
        self._lsr = _termios.TIOCSERGETLSR is not None  # until the driver says it has none

    @classmethod
    def open(
        cls,
        path: str,
        settings: SerialSettings,
        options: OpenOptions = DEFAULT_OPEN_OPTIONS,
        *,
        ioctl: Ioctl = os_ioctl,
    ) -> TtyPort:
        """Open and configure *path*. Blocking: call it off the event loop.

        Order: open (non-blocking, no controlling tty), check it is a tty,
        lock it (``flock``, then ``TIOCEXCL``) when ``settings.exclusive``,
        apply *settings*, then *options* (``HUPCL``, RS-485, low latency,
        DTR, RTS).

        Raises the :class:`~trioserial.SerialPortError` subclass that fits:
        not found, permission denied, busy (locked by another process), not
        a serial port, or :class:`~trioserial.UnsupportedOperationError`
        for an option the driver cannot do. On any failure the fd is closed
        again (and the lock released with it).
        """
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            raise open_error(path, exc) from exc
        port = cls(fd, path, settings, ioctl=ioctl)
        try:
            if not os.isatty(fd):
                raise NotASerialPortError(
                    f"cannot open {path!r}: not a serial port (not a terminal device)",
                    port=path,
                    errno=errno.ENOTTY,
                )
            if settings.exclusive:
                port._lock("cannot open")
            port.settings = _apply_or_explain(fd, path, settings)
            port.apply_open_options(options)
        except BaseException:
            port.close()
            raise
        return port

    def _lock(self, doing: str) -> None:
        """Take the exclusive lock: ``flock`` (also stops root and other handles
        in this process) and ``TIOCEXCL`` (stops other openers, even those that
        never call ``flock``, such as a terminal program)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PortBusyError(
                f"{doing} {self.name!r}: port is busy (locked by another process, "
                f"or by another open handle in this one)",
                port=self.name,
                errno=errno.EBUSY,
            ) from None
        try:
            self._control("locking the port (TIOCEXCL)", _termios.TIOCEXCL, 0)
        except BaseException:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            raise
        self._excl = True

    def _unlock(self) -> None:
        self._excl = False
        self._control("unlocking the port (TIOCNXCL)", _termios.TIOCNXCL, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def apply_open_options(self, options: OpenOptions) -> None:
        if options.hupcl is not None:
            try:
                _termios.set_hupcl(self._fd, options.hupcl)
            except termios.error as exc:
                raise _termios_error(self.name, "setting hupcl", exc) from exc
        if options.rs485 is not None:
            self._control(
                "setting rs485 (TIOCSRS485)", _termios.TIOCSRS485, options.rs485.to_struct()
            )
        if options.low_latency is not None:
            self.set_low_latency(options.low_latency)
        if options.dtr is not None:
            self.set_dtr(options.dtr)
        if options.rts is not None:
            self.set_rts(options.rts)

    def set_low_latency(self, value: bool) -> None:
        """Set or clear the driver's ``ASYNC_LOW_LATENCY`` flag."""
        what = f"setting low_latency={value}"
        current = self._control(
            f"{what} (TIOCGSERIAL)", _termios.TIOCGSERIAL, bytes(_termios.SERIAL_STRUCT_SIZE)
        )
        assert isinstance(current, bytes)
        flags = _termios.serial_flags(current)
        new = flags | _termios.ASYNC_LOW_LATENCY if value else flags & ~_termios.ASYNC_LOW_LATENCY
        if new != flags:
            self._control(
                f"{what} (TIOCSSERIAL)",
                _termios.TIOCSSERIAL,
                _termios.with_serial_flags(current, new),
            )

    def rs485(self) -> RS485Settings:
        """The RS-485 configuration in force (``TIOCGRS485``)."""
        data = self._control(
            "reading rs485 (TIOCGRS485)", _termios.TIOCGRS485, bytes(RS485Settings().to_struct())
        )
        assert isinstance(data, bytes)
        return RS485Settings.from_struct(data)

    def fileno(self) -> int:
        return self._fd

    def read_nowait(self, max_bytes: int) -> bytes:
        try:
            data = os.read(self._fd, max_bytes)
        except OSError as exc:
            # Linux answers EIO from the moment a pty's other side starts to
            # close until the hangup is complete (then reads return b"").
            # When poll confirms the hangup, that is the same end of stream.
            if exc.errno == errno.EIO and is_hung_up(self._fd):
                return b""
            raise
        if _FULL_READ <= len(data) < max_bytes:
            return self._read_more(data, max_bytes)
        if not data and not is_hung_up(self._fd):
            # Someone reset VMIN to 0 behind our back (pyserial does on any
            # property change): an idle read now returns b"" instead of EAGAIN.
            # That is not end of stream; put VMIN back and report "nothing yet".
            _termios.ensure_vmin(self._fd)
            raise BlockingIOError(errno.EAGAIN, "no data yet (VMIN was reset; restored)")
        return data

    def _read_more(self, first: bytes, max_bytes: int) -> bytes:
        """Go on reading while reads come back full, up to *max_bytes* in all.

        A tty read returns at most the line discipline's 4 KiB, so a fast
        sender would otherwise cost the front end one event-loop pass per
        4 KiB; this way it costs one per burst. Short reads (the usual case
        on a real line, and every small message) never come here. Bytes
        already read are never dropped: an error on a later read ends the
        burst, and the next call meets the same error (EIO and EBADF persist).
        """
        chunks = [first]
        total = len(first)
        while total < max_bytes:
            try:
                data = os.read(self._fd, max_bytes - total)
            except OSError:  # EAGAIN (drained), or an error for the next call
                break
            if not data:  # hangup or VMIN reset: the next call tells which
                break
            chunks.append(data)
            total += len(data)
            if len(data) < _FULL_READ:
                break
        return b"".join(chunks)

    def write_nowait(self, data: memoryview) -> int:
        return os.write(self._fd, data)

    def apply_settings(self, settings: SerialSettings) -> None:
        """Apply what differs from the settings in force, or nothing at all.

        The line settings go in one ``tcsetattr``/``TCSETS2`` (see
        :func:`_termios.apply`); if the driver rejects them, the lock change
        (if any) is undone, so a failure leaves the old settings in force.
        """
        old = self.settings
        locking = settings.exclusive != old.exclusive
        if locking and settings.exclusive:
            self._lock("cannot lock")
        elif locking:
            self._unlock()
        try:
            if attrs.evolve(settings, exclusive=old.exclusive) != old:
                settings = _apply_or_explain(self._fd, self.name, settings)
        except BaseException:
            if locking and settings.exclusive:
                self._unlock()
            elif locking:
                self._lock("cannot lock")
            raise
        self.settings = settings

    # ------------------------------------------------------------ control
    # Each is one non-blocking ioctl through ``self.ioctl``.

    def _control(self, what: str, request: int | None, arg: int | bytes) -> int | bytes:
        """Run one control ioctl; map "no such feature" to UnsupportedOperationError."""
        if request is None:
            raise UnsupportedOperationError(
                f"{self.name!r} does not support {what}: the ioctl number is not known "
                f"on {sys.platform}/{platform.machine()}",
                port=self.name,
            )
        try:
            return self.ioctl(self._fd, request, arg)
        except OSError as exc:
            raise self._control_error(what, exc) from exc

    def _control_error(self, what: str, exc: OSError) -> OSError:
        code = exc.errno
        if code == errno.EBADF or self._fd == -1:
            return exc  # closed: the front end reports ClosedResourceError
        name = errno.errorcode.get(code or 0, str(code))
        if code in _UNSUPPORTED_ERRNOS:
            return UnsupportedOperationError(
                f"{self.name!r} does not support {what} (the driver answered {name}: "
                f"ptys and some adapters lack this)",
                port=self.name,
                errno=code,
            )
        return SerialPortError(
            f"{what} failed on {self.name!r}: {exc.strerror or name}", port=self.name, errno=code
        )

    def _read_int(self, what: str, request: int) -> int:
        result = self._control(what, request, INT.pack(0))
        assert isinstance(result, bytes)
        return int(INT.unpack(result)[0])

    def _modem_bits(self) -> int:
        return self._read_int("reading the modem lines (TIOCMGET)", _termios.TIOCMGET)

    def modem_lines(self) -> ModemLines:
        return modem_lines_from_bits(self._modem_bits())

    def _drive(self, line: str, bit: int, value: bool) -> None:
        request, name = (
            (_termios.TIOCMBIS, "TIOCMBIS") if value else (_termios.TIOCMBIC, "TIOCMBIC")
        )
        self._control(f"setting {line} {'on' if value else 'off'} ({name})", request, INT.pack(bit))

    def set_dtr(self, value: bool) -> None:
        self._drive("DTR", _termios.TIOCM_DTR, value)

    def set_rts(self, value: bool) -> None:
        self._drive("RTS", _termios.TIOCM_RTS, value)

    @property
    def break_condition(self) -> bool:
        """Whether we are holding a break (the kernel cannot be asked)."""
        return self._break

    def set_break(self, value: bool) -> None:
        if value:
            self._control("starting a break (TIOCSBRK)", _termios.TIOCSBRK, 0)
        else:
            self._control("ending a break (TIOCCBRK)", _termios.TIOCCBRK, 0)
        self._break = value

    def modem_change_counts(self) -> tuple[int, int, int, int] | None:
        if not self._icount:
            return None
        try:
            data = self._control(
                "reading the modem-line counters (TIOCGICOUNT)",
                _termios.TIOCGICOUNT,
                bytes(_termios.ICOUNT.size),
            )
        except UnsupportedOperationError:
            self._icount = False  # many USB adapters keep none: levels only
            return None
        assert isinstance(data, bytes)
        cts, dsr, rng, dcd = _termios.ICOUNT.unpack(data)[:4]
        return cts, dsr, rng, dcd

    def transmitter_empty(self) -> bool | None:
        request = _termios.TIOCSERGETLSR
        if not self._lsr or request is None:
            return None
        try:
            lsr = self._read_int("reading the transmitter state (TIOCSERGETLSR)", request)
        except UnsupportedOperationError:
            self._lsr = False  # USB adapters: TIOCOUTQ is all we get
            return None
        return bool(lsr & _termios.TIOCSER_TEMT)

    def in_waiting(self) -> int:
        return self._read_int("counting input bytes (TIOCINQ)", _termios.TIOCINQ)

    def input_pending(self) -> bool | None:
        try:
            # fcntl itself, not self.ioctl: this runs on every such receive.
            return bool(INT.unpack(fcntl.ioctl(self._fd, _termios.TIOCINQ, _INT_ZERO))[0])
        except (OSError, ValueError):  # closed (fd -1), or hung up: let the read tell
            return None

    def out_waiting(self) -> int:
        return self._read_int("counting output bytes (TIOCOUTQ)", _termios.TIOCOUTQ)

    def reset_input_buffer(self) -> None:
        self._control("discarding input (TCFLSH)", _termios.TCFLSH, _termios.TCIFLUSH)

    def reset_output_buffer(self) -> None:
        self._control("discarding output (TCFLSH)", _termios.TCFLSH, _termios.TCOFLUSH)

    def close(self) -> None:
        fd = self._fd
        if fd == -1:
            return
        try:
            # Output the device will never take (flow control stuck, cable
            # gone) would make close() wait for the kernel's closing_wait, up
            # to 30 s, on the event loop. Discard it: this close is abortive
            # for bytes still queued (aclose() can wait_drained() first).
            # Nothing queued means nothing to discard, and then no flush: on a
            # pty TCOFLUSH throws away bytes the other side has not read yet.
            if self._read_int("counting output bytes (TIOCOUTQ)", _termios.TIOCOUTQ) > 0:
                self.ioctl(fd, _termios.TCFLSH, _termios.TCOFLUSH)
        except OSError:
            pass
        try:
            if self._excl:
                # A pty slave's tty outlives our fd while its master is open;
                # without this, nobody but root could open it again.
                self.ioctl(fd, _termios.TIOCNXCL, 0)
        except OSError:
            pass
        finally:
            self._fd = -1
            os.close(fd)

    def share(self) -> TtyPort:
        """Another handle on this open tty, for one more user of the line.

        The handle has its own fd (a ``dup``), so closing it (or losing it to
        GC) never touches this one; it does not discard the output others
        queued either (only the line's last close can hit the kernel's
        closing wait, and this core's close discards then). The tty has one
        set of termios, so its :attr:`settings` are this core's: a change
        through either is what both report.
        """
        return _SharedTty(self)

    def __del__(self) -> None:
        # GC closes a forgotten port. No notify_closing here: a task waiting on
        # the fd would hold a reference to us, so nobody is waiting. The same
        # close as close(): a TIOCEXCL left set on a pty slave would lock
        # everyone but root out of it, and output stuck behind flow control
        # would make os.close() wait for the kernel's closing_wait.
        if getattr(self, "_fd", -1) != -1:
            # close() releases the fd whatever happens before (its finally);
            # an error after that is nobody's to see during GC.
            with contextlib.suppress(Exception):
                self.close()


class _SharedTty(TtyPort):
    """What :meth:`TtyPort.share` returns: a ``dup`` of the line's fd."""

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


def modem_lines_from_bits(bits: int) -> ModemLines:
    """A :class:`ModemLines` from ``TIOCMGET``'s bit mask."""
    return ModemLines(
        cts=bool(bits & _termios.TIOCM_CTS),
        dsr=bool(bits & _termios.TIOCM_DSR),
        ri=bool(bits & _termios.TIOCM_RI),
        cd=bool(bits & _termios.TIOCM_CD),
        dtr=bool(bits & _termios.TIOCM_DTR),
        rts=bool(bits & _termios.TIOCM_RTS),
    )


def _termios_error(name: str, what: str, exc: termios.error) -> SerialPortError:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return SerialPortError(f"{what} failed on {name!r}: {exc.args[-1]}", port=name, errno=code)


def _apply_or_explain(fd: int, name: str, settings: SerialSettings) -> SerialSettings:
    """:func:`_termios.apply`, its errors as :class:`~trioserial.SerialPortError`.

    On a pty, the data bits and parity are taken as asked and not applied:
    a pty moves bytes from one process to another, with no wire for them to
    shape, and its driver takes only 8N (it refuses the rest, or drops it
    quietly). So code written for an 8E1 device runs unchanged against a
    simulated one; everything a pty does keep (rate, stop bits, flow control)
    is applied and read back as on a UART.
    """
    line = settings
    if (settings.bytesize != 8 or settings.parity is not Parity.NONE) and is_pty(fd):
        line = settings.replace(bytesize=8, parity=Parity.NONE)
    try:
        in_force = _termios.apply(fd, line)
    except _termios.NotTakenError as exc:
        raise UnsupportedOperationError(
            f"cannot configure {name!r} for {settings.framing}: {exc}; "
            f"the previous settings are still in force",
            port=name,
        ) from exc
    except termios.error as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        raise SerialPortError(
            f"cannot configure {name!r} for {settings.framing}: {exc.args[-1]}",
            port=name,
            errno=code,
        ) from exc
    except OSError as exc:
        raise SerialPortError(
            f"cannot configure {name!r} for {settings.framing}: {exc.strerror}",
            port=name,
            errno=exc.errno,
        ) from exc
    if line is not settings:
        in_force = in_force.replace(bytesize=settings.bytesize, parity=settings.parity)
    return in_force


#: Device majors of Unix98 pty slaves (/dev/pts/N) on Linux.
PTY_SLAVE_MAJORS: Final = range(136, 144)
#: Linux's ``TIOCGDEV`` (``_IOR('T', 0x32, unsigned int)``): the device number
#: of the tty behind an fd. Python's termios module does not have it.
_TIOCGDEV: Final = 0x80045432


def is_pty(fd: int) -> bool:
    """Whether *fd* is a pty slave (Linux; elsewhere always ``False``).

    The tty's own device number (``TIOCGDEV``), not the file's: ``/dev/tty``
    and ``/dev/console`` are (5, 0) and (5, 1) whatever terminal they lead
    to, a pty or a UART.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        buf = fcntl.ioctl(fd, _TIOCGDEV, bytes(4))
        device = int.from_bytes(buf, sys.byteorder)
    except OSError:  # a kernel before 2.6.39
        try:
            device = os.fstat(fd).st_rdev
        except OSError:
            return False
    return os.major(device) in PTY_SLAVE_MAJORS

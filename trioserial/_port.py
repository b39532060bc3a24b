"""The tty port core: a local serial device opened non-blocking (layer 1).

Never imports trio or anyio. :meth:`TtyPort.open` may block (``open(2)`` on
a tty can wait for the driver), so front ends run it in a worker thread;
every other method is a non-blocking syscall.
"""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import select
import sys
import termios
from typing import Final

from . import _termios
from ._core import PortCore
from ._errors import (
    NotASerialPortError,
    PortBusyError,
    SerialPortError,
    UnsupportedOperationError,
    open_error,
)
from ._settings import ModemLines, SerialSettings
from ._termios import INT, Ioctl, os_ioctl

__all__ = ["TtyPort"]

_OPEN_FLAGS: Final = os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
_HANGUP: Final = select.POLLHUP | select.POLLERR | select.POLLNVAL
#: What a driver says when it has no such feature (a pty has no modem lines).
_UNSUPPORTED_ERRNOS: Final = frozenset({errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP})


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

    @classmethod
    def open(cls, path: str, settings: SerialSettings) -> TtyPort:
        """Open and configure *path*. Blocking: call it off the event loop.

        Raises the :class:`~trioserial.SerialPortError` subclass that fits:
        not found, permission denied, busy (locked by another process), or
        not a serial port. On any failure the fd is closed again.
        """
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            raise open_error(path, exc) from exc
        try:
            if not os.isatty(fd):
                raise NotASerialPortError(
                    f"cannot open {path!r}: not a serial port (not a terminal device)",
                    port=path,
                    errno=errno.ENOTTY,
                )
            if settings.exclusive:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise PortBusyError(
                        f"cannot open {path!r}: port is busy (locked by another process)",
                        port=path,
                        errno=errno.EBUSY,
                    ) from None
            _apply_or_explain(fd, path, settings)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, path, settings)

    def fileno(self) -> int:
        return self._fd

    def read_nowait(self, max_bytes: int) -> bytes:
        data = os.read(self._fd, max_bytes)
        if not data and not is_hung_up(self._fd):
            # Someone reset VMIN to 0 behind our back (pyserial does on any
            # property change): an idle read now returns b"" instead of EAGAIN.
            # That is not end of stream; put VMIN back and report "nothing yet".
            _termios.ensure_vmin(self._fd)
            raise BlockingIOError(errno.EAGAIN, "no data yet (VMIN was reset; restored)")
        return data

    def write_nowait(self, data: memoryview) -> int:
        return os.write(self._fd, data)

    def apply_settings(self, settings: SerialSettings) -> None:
        if settings.exclusive != self.settings.exclusive:
            fcntl.flock(
                self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB if settings.exclusive else fcntl.LOCK_UN
            )
        _apply_or_explain(self._fd, self.name, settings)
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
                f"{self.name!r} does not support {what} (the driver answered {name}; "
                f"a pty has no modem lines, and some adapters lack them too)",
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

    def in_waiting(self) -> int:
        return self._read_int("counting input bytes (TIOCINQ)", _termios.TIOCINQ)

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
            # to 30 s. Closing is abortive: discard it. (wait_drained() first
            # if the bytes matter.)
            self.ioctl(fd, _termios.TCFLSH, _termios.TCOFLUSH)
        except OSError:
            pass
        finally:
            self._fd = -1
            os.close(fd)

    def __del__(self) -> None:
        # GC closes a forgotten port. No notify_closing here: a task waiting on
        # the fd would hold a reference to us, so nobody is waiting.
        if getattr(self, "_fd", -1) != -1:
            os.close(self._fd)
            self._fd = -1


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


def _apply_or_explain(fd: int, name: str, settings: SerialSettings) -> None:
    try:
        _termios.apply(fd, settings)
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

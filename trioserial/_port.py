"""The tty port core: a local serial device opened non-blocking (layer 1).

Never imports trio or anyio. :meth:`TtyPort.open` may block (``open(2)`` on
a tty can wait for the driver), so front ends run it in a worker thread;
every other method is a non-blocking syscall.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import termios
from typing import Final

from . import _termios
from ._core import PortCore
from ._errors import NotASerialPortError, PortBusyError, SerialPortError, open_error
from ._settings import SerialSettings

__all__ = ["TtyPort"]

_OPEN_FLAGS: Final = os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC
_HANGUP: Final = select.POLLHUP | select.POLLERR | select.POLLNVAL
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

    def __init__(self, fd: int, name: str, settings: SerialSettings) -> None:
        """Take ownership of the open, non-blocking tty *fd*. Use :meth:`open` instead."""
        self._fd = fd
        self.name = name
        self.settings = settings

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
        if settings.exclusive != self.settings.exclusive:
            fcntl.flock(
                self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB if settings.exclusive else fcntl.LOCK_UN
            )
        _apply_or_explain(self._fd, self.name, settings)
        self.settings = settings

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd == -1:
            return
        try:
            # Output the device will never take (flow control stuck, cable
            # gone) would make close() wait for the kernel's closing_wait, up
            # to 30 s. Closing is abortive: discard it. (wait_drained() first
            # if the bytes matter.)
            termios.tcflush(fd, termios.TCOFLUSH)
        except termios.error:
            pass
        finally:
            os.close(fd)

    def __del__(self) -> None:
        # GC closes a forgotten port. No notify_closing here: a task waiting on
        # the fd would hold a reference to us, so nobody is waiting.
        if getattr(self, "_fd", -1) != -1:
            os.close(self._fd)
            self._fd = -1


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

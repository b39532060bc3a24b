"""Exceptions raised by trioserial (layer 0).

Every error about a port or its URL is a :class:`SerialPortError`, which is
a :class:`serial.SerialException` and so an :class:`OSError`: code written for
pyserial (or for Jumpstarter, which expects a hangup to arrive as an
``OSError``) keeps working. The message always names the port.
:class:`UnsupportedURLError` is also a :class:`ValueError`, as it always was.
"""

from __future__ import annotations

import errno as _errno
import os
import stat

import serial

__all__ = [
    "NotASerialPortError",
    "PortBusyError",
    "PortNotFoundError",
    "PortPermissionError",
    "SerialPortError",
    "UnsupportedOperationError",
    "UnsupportedURLError",
]


class SerialPortError(serial.SerialException):
    """A serial port could not be opened, configured or controlled.

    The base of every error trioserial raises about a port or its URL (bad
    arguments are :exc:`TypeError`/:exc:`ValueError`; a stream's own failures
    are the event loop library's ``...ResourceError``). It is a
    :class:`serial.SerialException` and so an :class:`OSError`, which is what
    code written for pyserial catches.

    Attributes:
      port: the port (device path or URL) the error is about.
      errno: the OS error number behind it, or ``None``.
    """

    def __init__(self, message: str, *, port: str, errno: int | None = None) -> None:
        if errno is None:
            super().__init__(message)
        else:
            super().__init__(errno, message)
        self.port = port
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:  # keep pickling (and copy) working
        return (_rebuild, (type(self), self.message, self.port, self.errno))


def _rebuild(
    cls: type[SerialPortError], message: str, port: str, errno: int | None
) -> SerialPortError:
    return cls(message, port=port, errno=errno)


class PortNotFoundError(SerialPortError):
    """The port does not exist (no such device path, or the device is absent)."""


class PortBusyError(SerialPortError):
    """Another process (or another handle in this one) holds the port exclusively."""


class PortPermissionError(SerialPortError):
    """The OS refused access to the port (check the ``dialout`` group), or to a
    directory on its path that this user may not search."""


class NotASerialPortError(SerialPortError):
    """The path exists but is not a terminal device (a file, a directory, a socket)."""


class UnsupportedOperationError(SerialPortError):
    """The port or transport cannot do this (for example modem lines on a pty).

    A pty answers every modem-line ioctl with ``ENOTTY``; a ``socket://``
    port has no modem lines at all. Code that must run on both real UARTs
    and ptys catches this one type.
    """


class UnsupportedURLError(SerialPortError, ValueError):
    """The URL's scheme is unknown, or its options are malformed.

    Raised before anything is opened. Also a :exc:`ValueError` (the argument
    is wrong), so ``except ValueError`` keeps catching it; ``port`` is the
    URL whose check failed (under ``spy://``, the inner one), also named in
    the message.
    """

    def __init__(self, message: str, *, port: str = "", errno: int | None = None) -> None:
        super().__init__(message, port=port, errno=errno)


def open_error(port: str, exc: OSError) -> SerialPortError:
    """Map an ``OSError`` from ``open()`` (or ``stat()``) of *port* to the documented error type.

    Where the errno alone misleads, *port* is looked at (so call it where
    blocking is fine, as the open itself): ``open(2)`` of a Unix socket
    fails with ``ENXIO``, the errno of a device node with no device behind
    it; and ``EACCES`` also comes from a directory on the way that this user
    may not search, where "join the 'dialout' group" would be wrong advice.
    """
    code = exc.errno
    reason = exc.strerror or str(exc)
    message = f"cannot open {port!r}: {reason}"
    if code in (_errno.ENXIO, _errno.ENODEV) and _is_socket(port):
        return NotASerialPortError(
            f"cannot open {port!r}: not a serial port (a socket)", port=port, errno=code
        )
    if code in (_errno.ENOENT, _errno.ENXIO, _errno.ENODEV):
        return PortNotFoundError(message, port=port, errno=code)
    if code in (_errno.EACCES, _errno.EPERM):
        hint = (
            "a directory on its path cannot be searched by this user"
            if _behind_a_closed_directory(port)
            else "is the user in the group that owns the device, such as 'dialout'?"
        )
        return PortPermissionError(f"{message} ({hint})", port=port, errno=code)
    if code in (_errno.EBUSY, _errno.EWOULDBLOCK):
        return PortBusyError(
            f"cannot open {port!r}: port is busy (used exclusively by another process)",
            port=port,
            errno=code,
        )
    if code in (_errno.EISDIR, _errno.ENOTTY, _errno.ENOTDIR):
        return NotASerialPortError(
            f"cannot open {port!r}: not a serial port ({reason})", port=port, errno=code
        )
    return SerialPortError(message, port=port, errno=code)


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _behind_a_closed_directory(path: str) -> bool:
    """Whether even ``stat`` of *path* is refused: a directory on the way is not searchable."""
    try:
        os.stat(path)
    except PermissionError:
        return True
    except (OSError, ValueError):
        pass
    return False

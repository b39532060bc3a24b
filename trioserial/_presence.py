"""The presence check: is a configured device there, without opening it (layer 1).

Shared by :class:`trioserial.PySerial` and the Jumpstarter driver. An open
raises DTR, and a close with ``HUPCL`` drops it, which resets many boards:
so a device path is only looked at (``stat``, and ``access`` where asked),
never opened. URLs are the callers' to decide.
"""

from __future__ import annotations

import errno
import os
import stat

from ._errors import NotASerialPortError, PortNotFoundError, open_error

__all__ = ["check_present"]


def check_present(path: str, *, accessible: bool = False) -> None:
    """Raise if the device *path* is clearly not an openable serial port.

    Args:
      path: a device path (not a URL).
      accessible: also require read and write permission (``access(2)``).

    Raises:
      trioserial.PortNotFoundError: nothing at *path*.
      trioserial.NotASerialPortError: *path* is not a character device (a
        regular file, a directory, a socket).
      trioserial.PortPermissionError: *accessible* and the user may not open it.
      trioserial.SerialPortError: *path* could not be looked at.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise PortNotFoundError(
            f"serial port {path!r} is not present (no such device); pass check_present=False "
            f"for a port that appears later",
            port=path,
            errno=errno.ENOENT,
        ) from None
    except OSError as exc:
        raise open_error(path, exc) from exc
    if not stat.S_ISCHR(st.st_mode):
        raise NotASerialPortError(
            f"serial port {path!r} is not a character device", port=path, errno=errno.ENOTTY
        )
    if accessible and not os.access(path, os.R_OK | os.W_OK):
        raise open_error(path, PermissionError(errno.EACCES, os.strerror(errno.EACCES)))

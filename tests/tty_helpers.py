"""Read a tty's settings back from the kernel, for tests (the library never needs to)."""

from __future__ import annotations

import fcntl
import os
import termios

from trioserial import _termios


def get_vmin_vtime(fd: int) -> tuple[int, int]:
    """VMIN and VTIME as the tty has them."""
    cc = termios.tcgetattr(fd)[_termios._CC]
    return _termios._cc_int(cc[termios.VMIN]), _termios._cc_int(cc[termios.VTIME])


def get_baudrate(fd: int) -> int:
    """The output rate in force, read back with ``termios2`` where possible."""
    if _termios.termios2_supported():
        buf = bytearray(_termios._TERMIOS2.size)
        fcntl.ioctl(fd, _termios.TCGETS2, buf)
        return int(_termios._TERMIOS2.unpack(buf)[-1])
    speed = termios.tcgetattr(fd)[_termios._OSPEED]
    for rate, const in _termios.STANDARD_RATES.items():
        if const == speed:
            return rate
    return 0


def locked(path: str) -> bool:
    """Whether some open file holds the port's flock (what exclusive=True takes)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False

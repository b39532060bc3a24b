"""The sync tty core, tested with no event loop at all (layer 1)."""

from __future__ import annotations

import contextlib
import errno
import os
import termios
from collections.abc import Iterator

import pytest

from trioserial import SerialSettings
from trioserial._port import TtyPort, is_hung_up


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    yield master, path
    with contextlib.suppress(OSError):
        os.close(master)


def test_open_sets_raw_vmin1_nonblocking(pty: tuple[int, str]) -> None:
    _, path = pty
    core = TtyPort.open(path, SerialSettings(baudrate=9600))
    try:
        fd = core.fileno()
        assert not os.get_blocking(fd)
        _iflag, oflag, cflag, lflag, _ispeed, ospeed, cc = termios.tcgetattr(fd)
        assert cc[termios.VMIN] == 1
        assert cc[termios.VTIME] == 0
        assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
        assert not oflag & termios.OPOST
        assert ospeed == termios.B9600
        assert cflag & termios.CSIZE == termios.CS8
    finally:
        core.close()


def test_idle_read_is_eagain_not_eof(pty: tuple[int, str]) -> None:
    master, path = pty
    core = TtyPort.open(path, SerialSettings())
    try:
        with pytest.raises(BlockingIOError):
            core.read_nowait(10)
        os.write(master, b"abc")
        # The pty moves bytes to the slave in a kernel worker: block on the
        # event (poll with no timeout) rather than sleeping.
        import select

        p = select.poll()
        p.register(core.fileno(), select.POLLIN)
        p.poll()
        assert core.read_nowait(10) == b"abc"
    finally:
        core.close()


def test_vmin_reset_behind_our_back_is_not_eof(pty: tuple[int, str]) -> None:
    _, path = pty
    core = TtyPort.open(path, SerialSettings())
    try:
        attrs = termios.tcgetattr(core.fileno())
        attrs[6][termios.VMIN] = 0
        termios.tcsetattr(core.fileno(), termios.TCSANOW, attrs)
        assert os.read(core.fileno(), 10) == b""  # what a naive reader sees: a false EOF
        with pytest.raises(BlockingIOError):
            core.read_nowait(10)
        assert termios.tcgetattr(core.fileno())[6][termios.VMIN] == 1  # and it is repaired
    finally:
        core.close()


def test_hangup_reads_eof_and_writes_eio(pty: tuple[int, str]) -> None:
    master, path = pty
    core = TtyPort.open(path, SerialSettings())
    try:
        assert not is_hung_up(core.fileno())
        os.close(master)
        assert is_hung_up(core.fileno())
        assert core.read_nowait(10) == b""
        assert core.read_nowait(10) == b""  # sticky
        with pytest.raises(OSError, match="Input/output error") as info:
            core.write_nowait(memoryview(b"x"))
        assert info.value.errno == errno.EIO
        assert not core.is_closed_error(info.value)
    finally:
        core.close()


def test_close_forgets_the_fd_number(pty: tuple[int, str]) -> None:
    _, path = pty
    core = TtyPort.open(path, SerialSettings())
    core.close()
    core.close()  # idempotent
    assert core.fileno() == -1
    assert core.closed
    with pytest.raises(OSError, match="Bad file descriptor") as info:
        core.read_nowait(1)
    assert info.value.errno == errno.EBADF
    assert core.is_closed_error(info.value)
    assert "closed" in repr(core)


def test_exclusive_lock_conflicts_across_opens(pty: tuple[int, str]) -> None:
    from trioserial import PortBusyError

    _, path = pty
    first = TtyPort.open(path, SerialSettings())
    try:
        with pytest.raises(PortBusyError, match=f"cannot open {path!r}: port is busy"):
            TtyPort.open(path, SerialSettings())
        # exclusive=False opts out of taking the lock, and the holder's lock stays.
        TtyPort.open(path, SerialSettings(exclusive=False)).close()
    finally:
        first.close()
    TtyPort.open(path, SerialSettings()).close()  # released on close

"""Bad ports get one clear, documented error that names the port; nothing leaks."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import serial
import trio

import trioserial
from trioserial import (
    NotASerialPortError,
    PortBusyError,
    PortNotFoundError,
    PortPermissionError,
    SerialPortError,
    UnsupportedURLError,
    open_serial_port,
)

pytestmark = pytest.mark.usefixtures("no_fd_leaks")


async def test_missing_device() -> None:
    with pytest.raises(PortNotFoundError, match=r"cannot open '/dev/ttyNOPE9': No such file"):
        await open_serial_port("/dev/ttyNOPE9")


@pytest.mark.parametrize("kind", ["regular file", "directory", "/dev/null"])
async def test_not_a_tty(tmp_path: Path, kind: str) -> None:
    if kind == "regular file":
        path = tmp_path / "file"
        path.write_bytes(b"")
    elif kind == "directory":
        path = tmp_path
    else:
        path = Path("/dev/null")
    with pytest.raises(NotASerialPortError, match=f"cannot open '{path}': not a serial port"):
        await open_serial_port(path)


async def test_unknown_url_scheme() -> None:
    with pytest.raises(UnsupportedURLError, match=r"unsupported URL scheme 'gopher' in"):
        await open_serial_port("gopher://example/port")


@pytest.mark.parametrize("bad", [123, None, b"/dev/ttyS0", ""])
async def test_port_of_wrong_type(bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="port must be a device path or URL"):
        await open_serial_port(bad)  # type: ignore[arg-type]


async def test_bad_settings_are_rejected_before_anything_is_opened(pty_path: str) -> None:
    with pytest.raises(ValueError, match="baudrate must be between 1 and"):
        await open_serial_port(pty_path, baudrate=-1)
    with pytest.raises(TypeError, match="parity must be one of"):
        await open_serial_port(pty_path, parity=3)  # type: ignore[arg-type]
    # And nothing was left holding the port.
    async with await open_serial_port(pty_path):
        pass


async def test_port_locked_in_this_process(pty_path: str) -> None:
    async with await open_serial_port(pty_path):
        with pytest.raises(PortBusyError, match="port is busy") as info:
            await open_serial_port(pty_path)
        assert info.value.port == pty_path
        assert isinstance(info.value, OSError)


async def test_port_locked_by_another_process(pty_path: str) -> None:
    holder = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "os.write(1, b'locked')\n"  # one write: print() may make two, and the
        # second would meet the pipe this test closes once it has read the first
        "sys.stdin.read()\n"
    )
    async with trio.open_nursery() as nursery:
        proc: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                [sys.executable, "-c", holder, pty_path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        )
        assert proc.stdout is not None
        assert proc.stdin is not None
        assert (await proc.stdout.receive_some(100)).startswith(b"locked")
        with pytest.raises(PortBusyError, match=f"cannot open {pty_path!r}: port is busy"):
            await open_serial_port(pty_path)
        await proc.stdin.aclose()  # the holder exits, releasing its lock
        await proc.stdout.aclose()
    async with await open_serial_port(pty_path):
        pass


def test_permission_denied(pty_path: str) -> None:
    """An unprivileged opener of a root-owned pty (mode 0620) gets PortPermissionError.

    Root bypasses file permissions, so the open runs in a forked child that has
    dropped to "nobody" (or, when not root, on a pty chmod-ed to 0).
    """
    from trioserial._port import TtyPort
    from trioserial._settings import SerialSettings

    if os.geteuid() != 0:
        os.chmod(pty_path, 0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no trio here, only the sync core
        status = 1
        try:
            os.close(r)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            try:
                TtyPort.open(pty_path, SerialSettings()).close()
                os.write(w, b"opened")
            except PortPermissionError as exc:
                os.write(w, f"{type(exc).__name__}|{exc}|{exc.port}".encode())
            status = 0
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as reader:
        answer = reader.read().decode()
    _, code = os.waitpid(pid, 0)
    assert code == 0
    name, message, port = answer.split("|")
    assert name == "PortPermissionError"
    assert message.startswith(f"cannot open {pty_path!r}: Permission denied")
    assert port == pty_path
    assert issubclass(PortPermissionError, trioserial.SerialPortError)


async def test_unix_socket_is_not_a_serial_port(tmp_path: Path) -> None:
    """``open(2)`` of a socket fails with ENXIO, as a device node with no device does."""
    path = str(tmp_path / "sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        with pytest.raises(NotASerialPortError) as caught:
            await open_serial_port(path)
    assert str(caught.value) == f"cannot open {path!r}: not a serial port (a socket)"
    assert caught.value.port == path
    assert caught.value.errno == errno.ENXIO


def unprivileged(fn: Callable[[], str]) -> str:
    """What *fn* returns, run without root's power to ignore file permissions.

    As root, *fn* runs in a forked child that drops to "nobody" (only sync
    code there: no trio in a fork); otherwise it just runs.
    """
    if os.geteuid() != 0:
        return fn()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            os.write(w, fn().encode())
            status = 0
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as reader:
        answer = reader.read().decode()
    _, code = os.waitpid(pid, 0)
    assert code == 0, answer
    return answer


def test_directory_that_cannot_be_searched(pty_path: str) -> None:
    from trioserial._port import TtyPort
    from trioserial._settings import SerialSettings

    # Outside pytest's tmp_path: its parents are root's (mode 0700).
    top = Path(tempfile.mkdtemp(prefix="trioserial-local-"))
    try:
        top.chmod(0o755)
        locked = top / "locked"
        locked.mkdir(mode=0o755)
        (locked / "tty").symlink_to(pty_path)
        locked.chmod(0)
        path = str(locked / "tty")

        def child() -> str:
            try:
                TtyPort.open(path, SerialSettings()).close()
            except SerialPortError as exc:
                return f"{type(exc).__name__}|{exc}|{exc.port}|{exc.errno}"
            return "opened"

        name, message, port, code = unprivileged(child).split("|")
    finally:
        shutil.rmtree(top)
    assert name == "PortPermissionError"
    assert message == (
        f"cannot open {path!r}: Permission denied "
        f"(a directory on its path cannot be searched by this user)"
    )
    assert port == path
    assert code == str(errno.EACCES)


def test_every_error_about_a_port_is_a_serial_port_error() -> None:
    """What ``_errors`` and the docs promise: pyserial-era code catching
    ``serial.SerialException`` (or ``OSError``) sees every one of them."""
    import trioserial._errors

    for name in trioserial._errors.__all__:
        assert issubclass(getattr(trioserial._errors, name), SerialPortError), name


async def test_unknown_url_scheme_is_caught_as_pyserial_code_would() -> None:
    url = "gopher://example/port"
    with pytest.raises(serial.SerialException) as caught:
        await open_serial_port(url)
    error = caught.value
    assert isinstance(error, UnsupportedURLError)
    assert isinstance(error, ValueError)  # as before: the argument is wrong
    assert url in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is UnsupportedURLError
    assert (str(copy), copy.port, copy.errno) == (str(error), error.port, error.errno)

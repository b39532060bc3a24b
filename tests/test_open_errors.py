"""Bad ports get one clear, documented error that names the port; nothing leaks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio

import trioserial
from trioserial import (
    NotASerialPortError,
    PortBusyError,
    PortNotFoundError,
    PortPermissionError,
    UnsupportedURLError,
    open_serial_port,
)

pytestmark = pytest.mark.usefixtures("no_fd_leaks")


@pytest.fixture
def pty_path() -> Iterator[str]:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    yield path
    os.close(master)


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
        "os.write(1, b'locked')  # one write: print() splits it under PYTHONUNBUFFERED\n"
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

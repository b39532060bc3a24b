from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

# A default wall-clock deadline for every Trio test (the hooks live in trio_deadline.py).
from trio_deadline import (  # noqa: F401 - pytest finds hooks by name here
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
)

from trioserial import AsyncSerial
from trioserial._core import PortCore
from trioserial._open import open_core, opens_inline
from trioserial._options import OpenOptions
from trioserial._settings import SerialSettings
from trioserial.testing import PtyDevice


def open_fds() -> set[int]:
    """The fds open now.

    The listing includes the fd listdir itself used, already closed when it
    returns; it is dropped here, or the next fd opened (the one a leak would
    take) would count as open beforehand and the leak would go unseen.
    """
    return {fd for fd in map(int, os.listdir("/proc/self/fd")) if fd_is_open(fd)}


def fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def foreign_fd(target: str) -> bool:
    """An fd that another library's own threads open at times of their choosing.

    gRPC's C core (loaded by the in-process Jumpstarter tests, and alive for the
    rest of the session) creates eventfds from its background threads whenever
    its pollers wake: CI once saw one appear during test_permission_denied, with
    grpc's ``_poll_wrapper`` thread alive. Nothing in trioserial, Trio, anyio or
    asyncio creates an eventfd (they wake their loops through socketpairs), so
    while grpc is loaded an eventfd is grpc's, not a leak of the code under test.
    """
    return target == "anon_inode:[eventfd]" and "grpc" in sys.modules


@contextlib.contextmanager
def fds_not_leaked() -> Iterator[None]:
    """Fail with AssertionError if the block leaves more fds open than it found."""
    before = open_fds()
    yield
    targets = {}
    for fd in open_fds() - before:
        with contextlib.suppress(FileNotFoundError):  # closed since: not leaked
            targets[fd] = os.readlink(f"/proc/self/fd/{fd}")
    leaked = {fd: target for fd, target in targets.items() if not foreign_fd(target)}
    assert not leaked, f"fds leaked: {leaked}"


@pytest.fixture
def no_fd_leaks() -> Iterator[None]:
    """Fail the test if it leaves more fds open than it found."""
    with fds_not_leaked():
        yield


class GatedOpen:
    """The driver's ``open_core``, held in its worker thread until the test says go.

    ``await gate.wait_entered()`` returns once an open is under way (blocked in
    the thread, where nothing can interrupt it); ``gate.release()`` lets it
    finish. For tests of what close() and cancellation do during an open.
    """

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.proceed = threading.Event()

    def open(self, url: str, settings: SerialSettings, options: OpenOptions) -> PortCore:
        self.entered.set()
        self.proceed.wait()
        return open_core(url, settings, options)

    async def wait_entered(self) -> None:
        with trio.fail_after(5):
            await trio.to_thread.run_sync(self.entered.wait)

    def release(self) -> None:
        self.proceed.set()


@pytest.fixture
def gated_open(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedOpen]:
    """Every open the driver starts waits at a :class:`GatedOpen` gate.

    Only for opens in a worker thread: a pty slave under /dev opens on the
    event loop, in one step, and the gate would hold the loop. The tests of
    what happens *during* an open use :func:`linked_pty`, which opens in a thread.
    """
    import trioserial._driver

    gate = GatedOpen()
    monkeypatch.setattr(trioserial._driver, "open_core", gate.open)
    yield gate
    gate.release()  # never leave a worker thread parked


# ------------------------------------------------------------------ ptys


@pytest.fixture
def pty_path() -> Iterator[str]:
    """The slave path of a fresh pty that nobody has opened yet.

    Its master stays open, unread, until the test ends, so the slave is never
    hung up; for tests that open the port themselves (sync ones too).
    """
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    try:
        yield path
    finally:
        os.close(master)


@pytest.fixture
def pty_link(pty_path: str, tmp_path: Path) -> str:
    """:func:`pty_path` through a symlink outside /dev, as socat's ``link=``
    names one: such a path opens in a worker thread, not inline."""
    link = tmp_path / "ttyLINK0"
    link.symlink_to(pty_path)
    assert not opens_inline(str(link))
    return str(link)


@pytest.fixture
async def pty() -> AsyncIterator[tuple[str, PtyDevice]]:
    """A pty nobody has opened yet: its slave path, and the device on its master.

    For tests of code that opens the path itself (the driver); the master
    keeps the pty alive until the device is closed.
    """
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    device = PtyDevice(master, path)
    async with device:
        yield path, device


@pytest.fixture
def linked_pty(pty: tuple[str, PtyDevice], tmp_path: Path) -> tuple[str, PtyDevice]:
    """:func:`pty` through a symlink outside /dev (as ``/dev/serial/by-id`` names a
    port): its opens run in a worker thread, where a test can hold them."""
    link = tmp_path / "ttyLINKED0"
    link.symlink_to(pty[0])
    assert not opens_inline(str(link))
    return str(link), pty[1]


@pytest.fixture
async def pair(
    serial_pty_pair: tuple[AsyncSerial, PtyDevice],
) -> tuple[AsyncSerial, PtyDevice]:
    """``(port, device)`` on a fresh pty: the package's own ``serial_pty_pair``."""
    return serial_pty_pair

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
import trio

from trioserial._core import PortCore
from trioserial._open import open_core
from trioserial._options import OpenOptions
from trioserial._settings import SerialSettings


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture
def no_fd_leaks() -> Iterator[None]:
    """Fail the test if it leaves more fds open than it found."""
    before = open_fds()
    yield
    leaked = open_fds() - before
    # listdir's own fd is gone by now; anything else is ours.
    leaked = {fd for fd in leaked if os.path.exists(f"/proc/self/fd/{fd}")}
    targets = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in leaked}
    # Name the threads alive: an eventfd once appeared here during a test that
    # creates none; another library's background thread (grpc's, left by the
    # in-process Jumpstarter tests, is the suspect) must be told apart from us.
    threads = sorted(t.name for t in threading.enumerate())
    assert not leaked, f"fds leaked: {targets}; threads alive: {threads}"


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
    """Every open the driver starts waits at a :class:`GatedOpen` gate."""
    import trioserial._driver

    gate = GatedOpen()
    monkeypatch.setattr(trioserial._driver, "open_core", gate.open)
    yield gate
    gate.release()  # never leave a worker thread parked

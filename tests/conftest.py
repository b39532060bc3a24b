from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest


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
